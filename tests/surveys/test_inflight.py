"""Managing a poll in flight: add agencies, re-issue a link, send to another contact, reopen,
test email to oneself. Through the pages (with their confirmation step) and the API; audited."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact
from readiness.models import AuditEvent
from surveys.models import Invitation, Poll

from ..factories import AgencyFactory, ContactFactory
from .factories import PollFactory
from .test_delivery import agencies_with_contacts, reply_path, send, text_of


@pytest.fixture
def coordinator_client(client, coordinator):
    client.force_login(coordinator)
    return client


@pytest.fixture
def anon():
    """Whoever holds a reply link: no sign-in."""
    return Client()


@pytest.fixture
def sent(smtp_sink, django_capture_on_commit_callbacks):
    poll = PollFactory(target_agencies=agencies_with_contacts(2))
    invitations = send(poll, django_capture_on_commit_callbacks)
    assert len(smtp_sink.messages) == 2
    return poll, invitations


def post(client, capture, url, data=None, *, confirm=True):
    with capture(execute=True):
        return client.post(url, {**(data or {}), **({"confirm": "yes"} if confirm else {})})


def test_agencies_added_to_an_open_poll_are_invited_at_once_and_once(
    coordinator_client, sent, smtp_sink, django_capture_on_commit_callbacks
):
    poll, invitations = sent
    new = agencies_with_contacts(1)[0]
    no_contact = AgencyFactory(name="Nobody Home PD")
    url = reverse("surveys:poll-add", args=[poll.pk])
    already = invitations[0].agency
    data = {"agencies": [new.pk, no_contact.pk]}

    asked = post(coordinator_client, django_capture_on_commit_callbacks, url, data, confirm=False)
    assert asked.status_code == 200 and "Invite 2 more agencies?" in asked.text
    assert Invitation.objects.filter(poll=poll).count() == 2  # nothing before the confirmation

    done = post(coordinator_client, django_capture_on_commit_callbacks, url, data)
    assert done.status_code == 302
    assert Invitation.objects.filter(poll=poll, agency=new).count() == 1
    assert not Invitation.objects.filter(poll=poll, agency=no_contact).exists()
    assert [m.rcpt_tos for m in smtp_sink.messages[2:]] == [[new.contacts.get().email]]
    assert poll.target_agencies.filter(pk=new.pk).exists()
    event = AuditEvent.objects.get(action="poll.add_agencies")
    assert event.changes == {"agencies": [new.name]}
    # An agency already asked is not offered, and is not invited twice through the service.
    form = coordinator_client.get(url).context["form"]
    assert already not in form.fields["agencies"].queryset
    response = coordinator_client.post(
        reverse("api:poll-add-agencies", args=[poll.pk]),
        {"agencies": [new.pk]},
        content_type="application/json",
    )
    assert response.status_code == 400  # not a choice any more: already asked
    assert Invitation.objects.filter(poll=poll, agency=new).count() == 1


def test_agencies_are_added_to_open_polls_only(coordinator_client, sent):
    poll, _ = sent
    Poll.objects.filter(pk=poll.pk).update(state=Poll.State.CLOSED)
    new = agencies_with_contacts(1)[0]
    response = coordinator_client.post(
        reverse("api:poll-add-agencies", args=[poll.pk]),
        {"agencies": [new.pk]},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert not Invitation.objects.filter(agency=new).exists()


def test_reissuing_a_link_kills_every_earlier_link_and_sends_a_new_one(
    anon, coordinator_client, sent, smtp_sink, django_capture_on_commit_callbacks
):
    poll, [first, _] = sent
    old_path = reply_path(smtp_sink.messages[0].message)
    Invitation.objects.filter(pk=first.pk).update(revoked_at=timezone.now())
    url = reverse("surveys:invitation-reissue", args=[poll.pk, first.pk])

    asked = post(coordinator_client, django_capture_on_commit_callbacks, url, confirm=False)
    assert "Re-issue this link?" in asked.text and len(smtp_sink.messages) == 2

    post(coordinator_client, django_capture_on_commit_callbacks, url)
    [resent] = smtp_sink.messages[2:]
    assert resent.rcpt_tos == [first.email]
    new_path = reply_path(resent.message)
    assert anon.get(new_path).status_code == 200
    assert anon.get(old_path).status_code == 404  # the earlier link is no longer a link
    first.refresh_from_db()
    assert first.revoked_at is None and first.state == Invitation.State.SENT
    assert AuditEvent.objects.filter(action="invitation.reissue", object_id=str(first.pk)).exists()


def test_the_poll_goes_to_another_contact_of_the_agency(
    anon, coordinator_client, sent, smtp_sink, django_capture_on_commit_callbacks
):
    poll, [first, _] = sent
    alternate = ContactFactory(agency=first.agency, role=Contact.Role.ALTERNATE, name="Alex Alt")
    ContactFactory(agency=first.agency, role=Contact.Role.ALTERNATE, active=False)
    url = reverse("surveys:invitation-send-to", args=[poll.pk, first.pk])
    page = coordinator_client.get(url)
    assert list(page.context["form"].fields["contact"].queryset) == [alternate]

    post(coordinator_client, django_capture_on_commit_callbacks, url, {"contact": alternate.pk})
    [message] = smtp_sink.messages[2:]
    assert message.rcpt_tos == [alternate.email]
    new = Invitation.objects.get(poll=poll, contact=alternate)
    assert new.distance_km == first.distance_km
    assert anon.get(reply_path(message.message)).status_code == 200
    assert anon.get(reply_path(smtp_sink.messages[0].message)).status_code == 200
    # Twice is refused: they already have the poll.
    again = coordinator_client.post(
        reverse("api:invitation-send-to", args=[first.pk]),
        {"contact": alternate.pk},
        content_type="application/json",
    )
    assert again.status_code == 400
    assert Invitation.objects.filter(poll=poll, contact=alternate).count() == 1


def test_another_agencys_contact_is_refused(coordinator_client, sent):
    _, [first, second] = sent
    stranger = ContactFactory(agency=second.agency, role=Contact.Role.ALTERNATE)
    response = coordinator_client.post(
        reverse("api:invitation-send-to", args=[first.pk]),
        {"contact": stranger.pk},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "contact" in response.json()["errors"]
    assert not Invitation.objects.filter(contact=stranger).exists()


def test_a_poll_closed_early_reopens_until_its_deadline(
    anon, coordinator_client, smtp_sink, django_capture_on_commit_callbacks
):
    poll = PollFactory(target_agencies=agencies_with_contacts(1))
    send(poll, django_capture_on_commit_callbacks)
    path = reply_path(smtp_sink.messages[0].message)
    close = reverse("surveys:poll-close", args=[poll.pk])
    post(coordinator_client, django_capture_on_commit_callbacks, close)
    assert anon.get(path).status_code == 410

    reopen = reverse("surveys:poll-reopen", args=[poll.pk])
    asked = post(coordinator_client, django_capture_on_commit_callbacks, reopen, confirm=False)
    assert "Reopen this poll?" in asked.text
    post(coordinator_client, django_capture_on_commit_callbacks, reopen)
    poll.refresh_from_db()
    assert poll.state == Poll.State.OPEN and poll.closed_at is None
    assert anon.get(path).status_code == 200
    assert AuditEvent.objects.filter(action="poll.reopen", object_id=str(poll.pk)).exists()


def test_a_poll_past_its_deadline_is_not_reopened(coordinator_client):
    poll = PollFactory(
        state=Poll.State.CLOSED,
        sent_at=timezone.now() - timedelta(days=2),
        deadline=timezone.now() - timedelta(hours=1),
        closed_at=timezone.now() - timedelta(hours=1),
    )
    response = coordinator_client.post(reverse("api:poll-reopen", args=[poll.pk]))
    assert response.status_code == 409
    assert "duplicate the poll" in response.json()["detail"]
    page = coordinator_client.get(reverse("surveys:poll-detail", args=[poll.pk]))
    assert "Reopen until the deadline" not in page.text


def test_a_test_email_goes_to_me_only_and_its_link_records_nothing(
    anon, coordinator, coordinator_client, smtp_sink, django_capture_on_commit_callbacks
):
    agency = agencies_with_contacts(1)[0]
    poll = PollFactory(target_agencies=[agency], title="Stadium evacuation")
    url = reverse("surveys:poll-test-email", args=[poll.pk])
    response = post(coordinator_client, django_capture_on_commit_callbacks, url, confirm=False)
    assert response.status_code == 302
    [message] = smtp_sink.messages
    assert message.rcpt_tos == [coordinator.email]
    assert "[TEST to yourself]" in message.message["Subject"]
    assert "Stadium evacuation" in text_of(message.message)
    assert anon.get(reply_path(message.message)).status_code == 404
    assert not Invitation.objects.exists()
    assert poll.state == Poll.State.DRAFT
    event = AuditEvent.objects.get(action="poll.test_email")
    assert event.changes == {"to": coordinator.email}
