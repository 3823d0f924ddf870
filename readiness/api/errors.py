"""One error body for every failure: `{"status", "code", "detail", "errors"}`."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler as drf_exception_handler

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
