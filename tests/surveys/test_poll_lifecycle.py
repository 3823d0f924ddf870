"""Close now, cancel with a stand-down notice, extend the deadline: each audited."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.models import AuditEvent
from surveys.models import Invitation, Poll

from .factories import PollFactory
from .test_delivery import agencies_with_contacts, reply_path, send


@pytest.fixture
def sent_poll(smtp_sink, django_capture_on_commit_callbacks):
    poll = PollFactory(target_agencies=agencies_with_contacts(3))
    send(poll, django_capture_on_commit_callbacks)
    return poll


def post(client, name, poll, **data):
    """As the confirmed button posts (the confirmation step sends confirm=yes)."""
    return client.post(reverse(f"surveys:{name}", args=[poll.pk]), {"confirm": "yes", **data})


def test_close_now_kills_the_links(client, coordinator, sent_poll, smtp_sink):
    link = reply_path(smtp_sink.messages[0].message)
    client.force_login(coordinator)
    assert post(client, "poll-close", sent_poll).status_code == 302
    sent_poll.refresh_from_db()
    assert sent_poll.state == Poll.State.CLOSED and sent_poll.closed_at
    client.logout()
    assert client.get(link).status_code == 410
    assert AuditEvent.objects.filter(action="poll.close", actor=coordinator).exists()
    client.force_login(coordinator)
    post(client, "poll-close", sent_poll)  # twice: nothing more happens
    assert AuditEvent.objects.filter(action="poll.close").count() == 1


def test_cancel_sends_one_stand_down_per_address_naming_who(
    client, coordinator, sent_poll, smtp_sink, django_capture_on_commit_callbacks
):
    received_before = len(smtp_sink.messages)
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, "poll-cancel", sent_poll).status_code == 302
    sent_poll.refresh_from_db()
    assert sent_poll.state == Poll.State.CANCELLED and sent_poll.cancelled_by == coordinator
    notices = smtp_sink.messages[received_before:]
    assert len(notices) == 3
    assert sorted(m.rcpt_tos[0] for m in notices) == sorted(
        Invitation.objects.values_list("email", flat=True)
    )
    text = notices[0].message.get_content()
    assert "STAND DOWN" in notices[0].message["Subject"] and coordinator.email in text
    page = client.get(reverse("surveys:poll-detail", args=[sent_poll.pk]))
    assert "Cancelled by" in page.text
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "poll-cancel", sent_poll)  # twice: no second notice
    assert len(smtp_sink.messages) == received_before + 3


def test_extend_moves_the_deadline_later_only(client, coordinator, sent_poll):
    client.force_login(coordinator)
    later = timezone.localtime(sent_poll.deadline) + datetime.timedelta(days=1)
    post(client, "poll-extend", sent_poll, deadline=later.strftime("%Y-%m-%dT%H:%M"))
    sent_poll.refresh_from_db()
    assert abs(sent_poll.deadline - later) < datetime.timedelta(minutes=1)
    event = AuditEvent.objects.get(action="poll.extend")
    assert event.changes["deadline"][1].startswith(str(later.year))
    earlier = later - datetime.timedelta(days=3)
    response = post(client, "poll-extend", sent_poll, deadline=earlier.strftime("%Y-%m-%dT%H:%M"))
    sent_poll.refresh_from_db()
    assert abs(sent_poll.deadline - later) < datetime.timedelta(minutes=1)
    page = client.get(response["Location"])
    assert "must be later" in page.text


def test_drafts_cannot_be_closed_or_cancelled(client, coordinator, db):
    poll = PollFactory(target_agencies=agencies_with_contacts(1))
    client.force_login(coordinator)
    post(client, "poll-cancel", poll)
    post(client, "poll-close", poll)
    poll.refresh_from_db()
    assert poll.state == Poll.State.DRAFT


def test_a_link_can_be_withdrawn(client, coordinator, sent_poll, smtp_sink):
    message = smtp_sink.messages[0]
    link = reply_path(message.message)
    invitation = Invitation.objects.get(email=message.rcpt_tos[0])
    client.force_login(coordinator)
    url = reverse("surveys:invitation-revoke", args=[sent_poll.pk, invitation.pk])
    asked = client.post(url)  # the button without JavaScript: the step that asks first
    assert asked.status_code == 200 and "Withdraw this link?" in asked.text
    assert client.get(link).status_code == 200  # nothing withdrawn yet
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    client.logout()
    response = client.get(link)
    assert response.status_code == 410 and "withdrawn" in response.text
    assert AuditEvent.objects.filter(
        action="invitation.revoke", object_id=str(invitation.pk)
    ).exists()
    other = Invitation.objects.exclude(pk=invitation.pk).first()
    wrong_poll = reverse("surveys:invitation-revoke", args=[sent_poll.pk + 1, other.pk])
    client.force_login(coordinator)
    assert client.post(wrong_poll, {"confirm": "yes"}).status_code == 404


@pytest.mark.parametrize(
    ("name", "question"),
    [("poll-close", "Close this poll now?"), ("poll-cancel", "Cancel this poll?")],
)
def test_closing_and_cancelling_ask_first_without_javascript(
    client, coordinator, sent_poll, name, question
):
    client.force_login(coordinator)
    asked = client.post(reverse(f"surveys:{name}", args=[sent_poll.pk]))
    assert asked.status_code == 200 and question in asked.text
    assert '<input type="hidden" name="confirm" value="yes">' in asked.text
    assert Poll.objects.get(pk=sent_poll.pk).state == Poll.State.OPEN  # nothing done yet
    assert post(client, name, sent_poll).status_code == 302
    assert Poll.objects.get(pk=sent_poll.pk).state != Poll.State.OPEN


def test_any_poll_duplicates_as_a_new_draft_on_the_page_and_through_the_api(
    client, coordinator, sent_poll
):
    import json

    from tests.factories import RegionFactory

    sent_poll.target_regions.set([RegionFactory()])
    client.force_login(coordinator)
    response = client.post(reverse("surveys:poll-duplicate", args=[sent_poll.pk]))
    copy = Poll.objects.exclude(pk=sent_poll.pk).get()
    assert response["Location"] == reverse("surveys:poll-edit", args=[copy.pk])
    assert (copy.state, copy.title, copy.created_by) == (
        Poll.State.DRAFT, f"Copy of {sent_poll.title}", coordinator,
    )  # fmt: skip
    assert (copy.message, copy.destination_name) == (sent_poll.message, sent_poll.destination_name)
    assert list(copy.target_regions.all()) == list(sent_poll.target_regions.all())
    assert copy.deadline > timezone.now() and not copy.invitations.exists()
    assert AuditEvent.objects.filter(action="poll.duplicate", object_id=str(copy.pk)).exists()
    api = client.post(reverse("api:poll-duplicate", args=[sent_poll.pk]))
    assert api.status_code == 201 and json.loads(api.content)["state"] == "draft"
    assert Poll.objects.filter(state=Poll.State.DRAFT).count() == 2
