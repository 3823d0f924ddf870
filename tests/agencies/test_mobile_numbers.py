"""Contacts' mobile numbers (E.164, by libphonenumber), channels and quiet hours: the same rules
in the import, the commander's page, the API and the model (so the admin too)."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agencies import services
from agencies.models import Contact
from tests.factories import ContactFactory

from .test_import import agency_row, contact_row, csv_text, region  # noqa: F401

CHICAGO = ZoneInfo("America/Chicago")


def test_the_import_stores_mobiles_in_e164_with_channels_and_quiet_hours(region):  # noqa: F811
    result = services.registry_import(
        text=csv_text(
            agency_row("aurora-pd", "Aurora Police Department"),
            contact_row(
                "aurora-pd",
                "Dana Ruiz",
                "dana@aurora.example",
                mobile="(312) 555-0142",
                channels="both",
                quiet_hours="22:00 - 07:00",
                contact_role="primary",
            ),
        )
    )
    assert result.ok, result.errors
    contact = Contact.objects.get(email="dana@aurora.example")
    assert contact.mobile == "+13125550142"
    assert contact.channels == Contact.Channels.BOTH and contact.texts and contact.emails
    assert (contact.quiet_start, contact.quiet_end) == (datetime.time(22), datetime.time(7))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"mobile": "12345"}, "mobile '12345' is not a valid number"),
        ({"mobile": "+1 800 555 0100"}, "is not a mobile number"),
        ({"mobile": "call me"}, "is not a phone number"),
        ({"channels": "sms"}, "channels 'sms' needs a mobile number"),
        ({"channels": "pager"}, "unknown channels 'pager'"),
        ({"quiet_hours": "25:00-07:00"}, "must be HH:MM-HH:MM"),
        ({"quiet_hours": "22:00"}, "must be HH:MM-HH:MM"),
        ({"quiet_hours": "07:00-07:00"}, "starts and ends at the same time"),
    ],
)
def test_a_bad_mobile_channel_or_quiet_hours_is_a_line_error_and_nothing_is_written(
    region,  # noqa: F811
    extra,
    message,
):
    result = services.registry_import(
        text=csv_text(
            agency_row("aurora-pd", "Aurora Police Department"),
            contact_row("aurora-pd", "Dana Ruiz", "dana@aurora.example", **extra),
        )
    )
    assert [e.line for e in result.errors] == [3]
    assert message in result.errors[0].message
    assert not Contact.objects.exists()


def test_the_commanders_page_normalises_and_checks_the_mobile(client, commander):
    client.force_login(commander)
    url = reverse("agencies:contact-create", args=[commander.agency.pk])
    data = {"name": "Robin Lee", "email": "robin@a.example", "channels": "sms", "active": "on"}
    missing = client.post(url, data)
    assert missing.status_code == 422
    assert missing.context["form"].errors["mobile"] == ["Texts need a mobile number."]
    half = client.post(url, {**data, "mobile": "312.555.0142", "quiet_start": "22:00"})
    assert half.context["form"].errors["quiet_end"] == [
        "Give both ends of the quiet hours, or neither."
    ]
    ok = client.post(
        url, {**data, "mobile": "312.555.0142", "quiet_start": "22:00", "quiet_end": "06:30"}
    )
    assert ok.status_code == 302
    contact = Contact.objects.get(email="robin@a.example")
    assert contact.mobile == "+13125550142"
    page = client.get(commander.agency.get_absolute_url()).text
    assert "(312) 555-0142" in page


def test_the_api_refuses_a_number_texts_cannot_reach(client, commander):
    contact = ContactFactory(agency=commander.agency, role=Contact.Role.PRIMARY)
    client.force_login(commander)
    url = reverse("api:contact-detail", args=[contact.pk])
    refused = client.patch(url, {"mobile": "+1 800 555 0100"}, content_type="application/json")
    assert refused.status_code == 400
    assert "not a mobile number" in refused.json()["errors"]["mobile"][0]
    done = client.patch(
        url, {"mobile": "+44 7911 123456", "channels": "both"}, content_type="application/json"
    )
    assert done.status_code == 200, done.content
    assert done.json()["mobile"] == "+447911123456"


def test_the_model_field_normalises_for_every_model_form(db):
    contact = ContactFactory.build(mobile="312-555-0142")
    contact.mobile = Contact._meta.get_field("mobile").clean(contact.mobile, contact)
    assert contact.mobile == "+13125550142"
    with pytest.raises(ValidationError):
        Contact._meta.get_field("mobile").clean("555", contact)


@pytest.mark.parametrize(
    ("at", "quiet", "ends"),
    [
        (datetime.datetime(2026, 11, 30, 23, 15, tzinfo=CHICAGO), True, (12, 1, 7, 0)),
        (datetime.datetime(2026, 12, 1, 6, 59, tzinfo=CHICAGO), True, (12, 1, 7, 0)),
        (datetime.datetime(2026, 12, 1, 7, 0, tzinfo=CHICAGO), False, (12, 1, 7, 0)),
        (datetime.datetime(2026, 11, 30, 21, 59, tzinfo=CHICAGO), False, (11, 30, 21, 59)),
    ],
)
def test_quiet_hours_wrap_past_midnight(at, quiet, ends):
    contact = Contact(quiet_start=datetime.time(22), quiet_end=datetime.time(7))
    assert contact.quiet_at(at) is quiet
    end = contact.quiet_ends_after(at).astimezone(CHICAGO)
    assert (end.month, end.day, end.hour, end.minute) == ends
