"""Ids and times in filters: out-of-range ids and naive times are a 400, never a database error."""

import datetime

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

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
