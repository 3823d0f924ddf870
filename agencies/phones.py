"""Mobile numbers: parsed and validated by libphonenumber (the `phonenumbers` package, Google's
metadata for every numbering plan) and stored in E.164 (+13125550100), the form SMS providers
take. A number typed without a country code is read in PHONE_REGION (default US)."""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def to_e164(value: str) -> str:
    """The number in E.164, '' for a blank one; ValueError saying what is wrong otherwise."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, settings.PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{value!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            f"{value!r} is not a valid number (give the country code, e.g. +1 312 555 0100, "
            f"for a number outside {settings.PHONE_REGION})"
        )
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValueError(f"{value!r} is not a mobile number: texts cannot reach it")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def shown(e164: str) -> str:
    """A stored number as people read it: national format at home, international abroad."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164)
    home = phonenumbers.region_code_for_number(number) == settings.PHONE_REGION
    return phonenumbers.format_number(
        number,
        phonenumbers.PhoneNumberFormat.NATIONAL
        if home
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    )


class MobileNumberField(models.CharField):
    """A mobile number in E.164. Every model form (the pages', the admin's, the API's) and
    full_clean normalise what was typed, or refuse it with the reason."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 16)  # E.164: + and at most 15 digits
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return to_e164(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_mobile") from None
