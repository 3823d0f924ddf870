"""The compose form's data from the API's JSON: the API validates polls with the very form
the compose page uses, so it speaks the form's field names and text boxes here."""

from collections.abc import Mapping

from django import forms
from django.utils.datastructures import MultiValueDict

from readiness.api.filters import id_out_of_range
from readiness.api.forms import plain_text

from ..forms import CUSTOM

POLL_LISTS = {"target_regions", "target_team_types", "target_levels", "target_kinds",
              "target_agencies", "required_qualifications"}  # fmt: skip
# The API's field names for the compose form's (lists where the page has a text box).
POLL_RENAMES = {"requirements_text": "requirements", "reminders": "reminder_hours_before",
                "destination": "destination_name", "waves": "wave_rings",
                "wave_waits_text": "wave_waits"}  # fmt: skip
INVALID_CHOICE = forms.ModelMultipleChoiceField.default_error_messages["invalid_choice"]


def poll_form_data(data: Mapping, fields) -> tuple[MultiValueDict, dict]:
    """The compose form's data from the API's JSON, and errors about shapes the form cannot
    judge (a list where one value belongs, say)."""
    form_data, errors = MultiValueDict({"destination": [CUSTOM]}), {}
    for key, value in data.items():
        if key == "wave_rings":
            rings = _rings_text(value, data.get("wave_by"))
            if rings is None:
                errors[key] = ["Give a list of minutes, or a list of id lists (one per ring)."]
            else:
                form_data["waves"] = rings
            continue
        if key in POLL_LISTS or key in ("requirements", "reminder_hours_before", "wave_waits"):
            if value is None:
                value = []
            if not isinstance(value, list) or any(isinstance(v, list | dict) for v in value):
                errors[key] = ["Give a list of values."]
                continue
            if key == "requirements":
                form_data["requirements_text"] = "\n".join(plain_text(v) for v in value)
            elif key == "reminder_hours_before":
                form_data["reminders"] = ", ".join(plain_text(v) for v in value)
            elif key == "wave_waits":
                form_data["wave_waits_text"] = ", ".join(plain_text(v) for v in value)
            elif wrong := [v for v in value if key != "target_kinds" and id_out_of_range(v)]:
                # No object's id: the form's own message, without asking the database.
                errors[key] = [INVALID_CHOICE % {"value": wrong[0]}]
            else:
                form_data.setlist(key, [plain_text(v) for v in value])
        elif key in fields:  # the serializer's own (one value each)
            if isinstance(value, list | dict):
                errors[key] = ["Give a single value."]
                continue
            form_data[key] = plain_text(value)
    return form_data, errors


def _rings_text(value, by) -> str | None:
    """The compose form's text for the API's wave_rings (None: not a shape it can be)."""
    if value is None:
        return ""
    if not isinstance(value, list):
        return None
    if by in ("region", "agency"):
        if not all(isinstance(ring, list) and not any(isinstance(v, list | dict) for v in ring)
                   for ring in value):  # fmt: skip
            return None
        return "\n".join(", ".join(plain_text(v) for v in ring) for ring in value)
    if any(isinstance(v, list | dict) for v in value):
        return None
    return ", ".join(plain_text(v) for v in value)
