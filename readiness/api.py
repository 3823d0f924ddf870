"""The REST API's common parts: one error body for every failure, pages of results, and the
schema's description of those errors (readiness.api_schema). Who may ask: readiness.api_auth."""

import datetime

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.views import exception_handler as drf_exception_handler

# Pages ------------------------------------------------------------------------------------------


class Pagination(PageNumberPagination):
    """?page=N&page_size=M (at most 500); `count`, `next` and `previous` links with every page."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


# Ids in filters ---------------------------------------------------------------------------------
# An id beyond a 64-bit column's range is no object's, and must not reach the database: SQLite
# raises OverflowError on it, and foreign keys' and `__in` lookups do not guard against it.

ID_MIN, ID_MAX = -(2**63), 2**63 - 1


def id_out_of_range(value) -> bool:
    """Whether a value reads as a whole number that no id column holds."""
    try:
        number = int(str(value).strip())
    except ValueError:
        return False  # not a number at all: the field's own validation says so
    return not ID_MIN <= number <= ID_MAX


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", ID_MIN)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """One object's id, e.g. ?agency=12 (a whole number: 400 otherwise)."""

    field_class = IdField

    def get_max_validator(self):
        return None  # IdField's range is the limit


class IdsField(django_filters.fields.ModelMultipleChoiceField):
    def _check_values(self, value):
        for pk in value:
            if id_out_of_range(pk):
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        return super()._check_values(value)


class IdsFilter(django_filters.ModelMultipleChoiceFilter):
    """Objects' ids, repeated for several, e.g. ?region=1&region=2 (400 for an unknown one)."""

    field_class = IdsField


# Times in filters -------------------------------------------------------------------------------


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """ISO 8601, turned to UTC before the database sees it: ISO and Python allow offsets up to
    ±23:59, PostgreSQL only ±15:59; a time that is not one in UTC (year 0 or 10000) is invalid."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


# Errors -----------------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error has this body: the status again, a stable code, a sentence for people, and for
    invalid input the messages per field (nested fields joined with dots, e.g. lines.12.officers;
    errors about the request as a whole under non_field_errors)."""

    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as {"dotted.field": [messages]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors" and prefix:
                name = prefix
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]} if detail else {}
        flat = {}
        for index, value in enumerate(detail):
            for field, messages in flatten_errors(
                value, f"{prefix}.{index}" if prefix else str(index)
            ).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def error_body(status: int, code: str, detail: str, errors: dict | None = None) -> dict:
    return {"status": status, "code": code, "detail": detail, "errors": errors or {}}


def exception_handler(exc, context):
    """DRF's handler, then the one body shape for every error it answers."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: the project's 500 handler answers (in JSON here)
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        response.data = error_body(
            response.status_code, "invalid", "The request has errors; see errors.", errors
        )
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        response.data = error_body(response.status_code, code, str(detail))
        extra = getattr(exc, "extra", None)
        if extra:
            response.data.update(extra)
    return response


class Conflict(exceptions.APIException):
    """409: the request is understood, but the object's state refuses it (a poll already sent,
    a reply saved meanwhile by someone else). `extra` adds fields to the error body."""

    status_code = 409
    default_code = "conflict"
    default_detail = "The object's state does not allow this."

    def __init__(self, detail=None, code=None, extra=None):
        super().__init__(detail, code)
        self.extra = extra or {}
