"""Polls by text: one invitation per channel of the contact, texts through the provider's HTTP
API (a fake on 127.0.0.1), claimed and retried like email, delivery receipts from signed status
callbacks, quiet hours for planning surveys, reminders and the stand-down by text."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact
from readiness.models import AuditEvent
from surveys import chasing, compose, delivery
from surveys.models import Invitation, Poll
from tests.conftest import FIXED_NOW

from ..factories import AgencyFactory, ContactFactory, RegionFactory
from .factories import PollFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"Form: (?P<url>\S+)")


def texted_agency(channels="both", **contact):
    agency = AgencyFactory()
    ContactFactory(
        agency=agency, role=Contact.Role.PRIMARY, mobile="+13125550142", channels=channels,
        **contact,
    )  # fmt: skip
    return agency


def send_and_deliver(poll, capture) -> list[Invitation]:
    with capture(execute=True):
        compose.poll_send(poll=poll)
    return list(Invitation.objects.filter(poll=poll).order_by("channel"))


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_a_contact_reached_by_both_gets_an_email_and_a_text(
    client, coordinator, smtp_sink, sms_provider, django_capture_on_commit_callbacks
):
    agency = texted_agency("both")
    requester = AgencyFactory(name="Chicago Police Department")
    poll = PollFactory(
        target_agencies=[agency], purpose=Poll.Purpose.REQUEST, requesting_agency=requester,
        requesting_person="Cmdr. Lee", title="Stadium evacuation", officers_needed=120,
    )  # fmt: skip
    email, text = send_and_deliver(poll, django_capture_on_commit_callbacks)
    assert (email.channel, text.channel) == ("email", "sms")
    assert email.state == text.state == Invitation.State.SENT
    assert len(smtp_sink.messages) == 1
    [sent] = sms_provider.messages
    assert sent.to == "+13125550142" and sent.sender == "+13125550000"
    assert sent.body.startswith("REQUEST FOR ASSISTANCE from Chicago Police Department")
    assert "Stadium evacuation" in sent.body and "Need 120 officers" in sent.body
    assert f"Reply {text.reply_code} Y" in sent.body
    assert len(sent.body) <= 320  # two segments
    assert text.provider_id == sent.sid
    assert sent.status_callback.endswith(reverse("surveys:sms-status"))
    page = client.get(path_of(LINK.search(sent.body)["url"]))
    assert page.status_code == 200 and agency.name in page.text
    client.force_login(coordinator)
    detail = client.get(reverse("surveys:poll-detail", args=[poll.pk])).text
    assert "Text:</span> Sent" in detail and "(312) 555-0142" in detail
    api = client.get(reverse("api:invitation-list"), {"poll": poll.pk}).json()["results"]
    assert sorted((i["channel"], i["mobile"]) for i in api) == [
        ("email", ""),
        ("sms", "+13125550142"),
    ]


def test_a_contact_reached_by_text_only_gets_no_email(
    smtp_sink, sms_provider, django_capture_on_commit_callbacks
):
    poll = PollFactory(target_agencies=[texted_agency("sms")])
    [text] = send_and_deliver(poll, django_capture_on_commit_callbacks)
    assert text.channel == "sms" and text.email == ""
    assert smtp_sink.messages == [] and len(sms_provider.messages) == 1
    assert sms_provider.messages[0].body.startswith("PLANNING SURVEY")


def test_a_provider_refusal_fails_the_text_with_its_reason_and_a_5xx_is_retried(
    smtp_sink, sms_provider, django_capture_on_commit_callbacks
):
    sms_provider.fail_next(1, 400, 21211, "The 'To' number +13125550142 is not a valid phone")
    poll = PollFactory(target_agencies=[texted_agency("sms")])
    [text] = send_and_deliver(poll, django_capture_on_commit_callbacks)
    assert text.state == Invitation.State.FAILED
    assert "400" in text.failure_reason and "21211" in text.failure_reason

    sms_provider.fail_next(2, 503, message="Service unavailable")
    other = PollFactory(target_agencies=[texted_agency("sms")])
    with django_capture_on_commit_callbacks(execute=False):
        compose.poll_send(poll=other)
    [text] = Invitation.objects.filter(poll=other)
    for _ in range(3):  # the task's retries, each when due (the embedded default's way)
        delivery.invitations_deliver(invitation_ids=[text.pk], backoff=False)
    text.refresh_from_db()
    assert text.state == Invitation.State.SENT and text.attempts == 3
    assert len(sms_provider.to("+13125550142")) == 1


def test_the_provider_unreachable_puts_texts_back_and_email_still_goes(settings, smtp_sink):
    settings.SMS_PROVIDER = "twilio"
    settings.SMS_API_URL = "http://127.0.0.1:9"  # discard port: connection refused
    settings.SMS_ACCOUNT_SID, settings.SMS_AUTH_TOKEN, settings.SMS_FROM = "AC1", "t", "+1312"
    poll = PollFactory(target_agencies=[texted_agency("both")])
    compose.poll_send(poll=poll)  # the delivery task is not run: one pass of it below
    ids = list(Invitation.objects.filter(poll=poll).values_list("pk", flat=True))
    assert delivery.invitations_deliver(invitation_ids=ids).pending != []
    email, text = Invitation.objects.filter(poll=poll).order_by("channel")
    assert email.state == Invitation.State.SENT
    assert text.state == Invitation.State.QUEUED and text.next_attempt_at is not None
    assert "cannot be reached" in text.failure_reason


def test_delivery_receipts_are_signed_ordered_and_never_go_back(
    client, smtp_sink, sms_provider, django_capture_on_commit_callbacks
):
    poll = PollFactory(target_agencies=[texted_agency("sms")])
    [text] = send_and_deliver(poll, django_capture_on_commit_callbacks)
    [sent] = sms_provider.messages

    assert sms_provider.post_status(client, sent, "sent").status_code == 204
    assert sms_provider.post_status(client, sent, "delivered").status_code == 204
    text.refresh_from_db()
    assert text.receipt == "delivered"
    # Out of order or replayed: an earlier status does not undo delivery.
    sms_provider.post_status(client, sent, "sent")
    sms_provider.post_status(client, sent, "undelivered", "30003")
    text.refresh_from_db()
    assert (text.receipt, text.state) == ("delivered", Invitation.State.SENT)

    forged = sms_provider.post_status(client, sent, "failed", token="not-the-token")
    unsigned = client.post(reverse("surveys:sms-status"), {"MessageSid": sent.sid})
    assert forged.status_code == unsigned.status_code == 403
    assert AuditEvent.objects.filter(action="sms.refused").count() == 2
    text.refresh_from_db()
    assert text.receipt == "delivered"


def test_an_undelivered_receipt_fails_the_text_with_the_reason(
    client, smtp_sink, sms_provider, django_capture_on_commit_callbacks
):
    poll = PollFactory(target_agencies=[texted_agency("sms")])
    [text] = send_and_deliver(poll, django_capture_on_commit_callbacks)
    sms_provider.post_status(client, sms_provider.messages[0], "undelivered", "30003")
    text.refresh_from_db()
    assert text.state == Invitation.State.FAILED
    assert text.failure_reason == "text undelivered (provider error 30003)"


def test_a_planning_surveys_text_waits_out_quiet_hours_a_request_does_not(clock):
    # FIXED_NOW is 06:00 Chicago time... whatever it is, quiet hours around it.
    local = timezone.localtime(FIXED_NOW)
    start = (local - datetime.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + datetime.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    agency = texted_agency("sms", quiet_start=start, quiet_end=end)
    survey = PollFactory(target_agencies=[agency], purpose=Poll.Purpose.PLANNING)
    compose.poll_send(poll=survey)
    [waiting] = Invitation.objects.filter(poll=survey)
    assert timezone.localtime(waiting.next_attempt_at).time() == end
    assert delivery.invitations_deliver(invitation_ids=[waiting.pk]).pending == [waiting.pk]

    request = PollFactory(
        target_agencies=[agency], purpose=Poll.Purpose.REQUEST,
        requesting_agency=AgencyFactory(), requesting_person="Cmdr. Lee",
    )  # fmt: skip
    compose.poll_send(poll=request)
    [urgent] = Invitation.objects.filter(poll=request)
    assert urgent.next_attempt_at is None


def test_reply_codes_differ_for_one_number_across_open_polls(db):
    region = RegionFactory()
    agency = texted_agency("sms")
    agency.region = region
    agency.save()
    codes = set()
    for _ in range(30):
        poll = PollFactory(target_agencies=[agency])
        compose.poll_send(poll=poll)
        codes.add(Invitation.objects.get(poll=poll).reply_code)
    assert len(codes) == 30
    assert all(re.fullmatch(r"[1-9]\d{3}", code) for code in codes)


def test_console_provider_prints_texts(capsys, settings, django_capture_on_commit_callbacks):
    settings.SMS_PROVIDER = "console"
    poll = PollFactory(target_agencies=[texted_agency("sms")], title="Flood response")
    [text] = send_and_deliver(poll, django_capture_on_commit_callbacks)
    out = capsys.readouterr().out
    assert "Text message to +13125550142" in out and "Flood response" in out
    assert text.state == Invitation.State.SENT and text.provider_id.startswith("console-")


def test_reminders_and_the_stand_down_go_by_text_too(
    client, coordinator, smtp_sink, sms_provider, django_capture_on_commit_callbacks
):
    poll = PollFactory(target_agencies=[texted_agency("both")])
    email, text = send_and_deliver(poll, django_capture_on_commit_callbacks)
    assert chasing.reminders_send(invitation_ids=[email.pk, text.pk]) == 2
    reminder = sms_provider.messages[-1]
    assert reminder.body.startswith("REMINDER, no answer yet.")

    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-cancel", args=[poll.pk]), {"confirm": "yes"})
    stand_down = sms_provider.messages[-1]
    assert stand_down.body.startswith("STAND DOWN:") and stand_down.to == "+13125550142"
    assert any("STAND DOWN" in m.message["Subject"] for m in smtp_sink.messages)


@pytest.mark.parametrize("purpose", [Poll.Purpose.PLANNING, Poll.Purpose.REQUEST])
def test_the_send_count_is_agencies_not_messages(purpose, db):
    kwargs = (
        {"requesting_agency": AgencyFactory(), "requesting_person": "X"}
        if purpose == (Poll.Purpose.REQUEST)
        else {}
    )
    poll = PollFactory(target_agencies=[texted_agency("both")], purpose=purpose, **kwargs)
    assert compose.poll_send(poll=poll) == 1
    assert Invitation.objects.filter(poll=poll).count() == 2
