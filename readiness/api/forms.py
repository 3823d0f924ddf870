"""What the API shares with the pages: a Django form fed from JSON, its errors under the API's field
names. The API validates with the pages' forms, so both give the same rules and messages."""

from collections.abc import Mapping

from rest_framework import exceptions


def form_errors(form, rename: Mapping[str, str] | None = None, prefix: str = "") -> dict:
    """A Django form's errors in the API's shape, under the API's field names."""
    rename = rename or {}
    errors: dict[str, list[str]] = {}
    for name, messages in form.errors.items():
        key = "non_field_errors" if name == "__all__" else prefix + rename.get(name, name)
        errors.setdefault(key, []).extend(str(m) for m in messages)
    return errors


def plain_text(value) -> str:
    """A JSON scalar as the string a form field would have received from a page."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


def json_object(data) -> Mapping:
    if not isinstance(data, Mapping):
        raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
    return data
