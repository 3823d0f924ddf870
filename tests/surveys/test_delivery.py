"""Invitation delivery to a real SMTP server on 127.0.0.1: send, retry, give up, reply links.

Celery runs eagerly in tests: `poll_send` queues delivery on commit and the captured callbacks
run the task in the test. Retries are driven deterministically, never by waiting.
"""

import datetime
import re

import pytest
from celery.exceptions import Retry
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact
from surveys import services, tasks
from surveys.models import Invitation, Poll

from ..factories import AgencyFactory, ContactFactory
from .factories import PollFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = re.compile(
    re.escape(settings.SITE_URL + reverse("surveys:reply", args=["TOKEN"])).replace(
        "TOKEN", r"(?P<token>[A-Za-z0-9_-]+)"
    )
)


def agencies_with_contacts(n: int) -> list:
    agencies = [AgencyFactory() for _ in range(n)]
    for agency in agencies:
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    return agencies


def send(poll: Poll, capture) -> list[Invitation]:
    with capture(execute=True):
        services.poll_send(poll=poll)
    return list(Invitation.objects.filter(poll=poll).order_by("pk"))


def queued_poll(n: int = 1, **kwargs) -> list[Invitation]:
    """A sent poll whose delivery task has not run yet (no on_commit capture)."""
    poll = PollFactory(target_agencies=agencies_with_contacts(n), **kwargs)
    services.poll_send(poll=poll)  # the test transaction never commits: nothing is queued
    return list(Invitation.objects.filter(poll=poll).order_by("pk"))


def deliver_until_done(invitation_ids: list[int], *, max_rounds: int = 10) -> int:
    """Call the service the way Celery retries would, until nothing is left to retry."""
    for rounds in range(1, max_rounds + 1):
        invitation_ids = services.invitations_deliver(invitation_ids=invitation_ids)
        if not invitation_ids:
            return rounds
    raise AssertionError(f"still retrying after {max_rounds} rounds: {invitation_ids}")


def run_task_like_a_worker(invitation_ids: list[int], *, max_runs: int = 20) -> list[int]:
    """Run the task, then each retry it asks for at once. Returns the countdowns it asked for.

    Eager Celery (task_eager_propagates) raises Retry instead of running the retry itself.
    """
    countdowns, args = [], [invitation_ids]
    for retries in range(max_runs):
        try:
            tasks.deliver_invitations.apply(args=args, retries=retries)
        except Retry as retry:
            countdowns.append(retry.when)
            args = list(retry.sig.args)
        else:
            return countdowns
    raise AssertionError(f"still retrying after {max_runs} runs")


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def reply_path(message) -> str:
    match = TOKEN_URL.search(text_of(message))
    assert match, text_of(message)
    return reverse("surveys:reply", args=[match["token"]])


# Sending ----------------------------------------------------------------------------------------


def test_send_emails_each_contact_once_with_its_own_link(
    client, smtp_sink, django_capture_on_commit_callbacks
):
    agencies = agencies_with_contacts(5)
    poll = PollFactory(target_agencies=agencies)

    invitations = send(poll, django_capture_on_commit_callbacks)

    assert len(invitations) == 5
    assert len(smtp_sink.messages) == 5
    assert sorted(r for m in smtp_sink.messages for r in m.rcpt_tos) == sorted(
        a.contacts.get().email for a in agencies
    )
    paths = {}
    for agency in agencies:
        [received] = smtp_sink.to(agency.contacts.get().email)
        paths[agency.name] = reply_path(received.message)
    assert len(set(paths.values())) == 5
    for name, path in paths.items():
        response = client.get(path)
        assert response.status_code == 200
        assert response.context["invitation"].agency.name == name
        assert name in response.text
    for invitation in invitations:
        invitation.refresh_from_db()
        assert invitation.state == Invitation.State.SENT
        assert invitation.sent_at is not None
        assert invitation.attempts == 1
        assert invitation.failure_reason == ""


def test_planning_email_has_text_and_html_with_a_button(
    smtp_sink, django_capture_on_commit_callbacks
):
    poll = PollFactory(title="Summer festival", target_agencies=agencies_with_contacts(1))
    send(poll, django_capture_on_commit_callbacks)

    [received] = smtp_sink.messages
    message = received.message
    assert message["Subject"] == "Planning survey: Summer festival"
    assert message.get_content_type() == "multipart/alternative"
    text, html = text_of(message), html_of(message)
    assert "PLANNING SURVEY" in text
    assert "no agency has requested assistance" in text
    assert "Planning survey" in html
    url = TOKEN_URL.search(text).group(0)
    assert re.search(rf'<a href="{re.escape(url)}" style="background:[^"]*">Answer for ', html)


def test_request_email_says_who_requested_it(smtp_sink, django_capture_on_commit_callbacks):
    requester = AgencyFactory(name="Springfield Police Department")
    poll = PollFactory(
        title="Flood response",
        purpose=Poll.Purpose.REQUEST,
        requesting_agency=requester,
        requesting_person="Chief Dana Ortiz",
        target_agencies=agencies_with_contacts(1),
    )
    send(poll, django_capture_on_commit_callbacks)

    [received] = smtp_sink.messages
    message = received.message
    assert message["Subject"] == "Request for assistance: Flood response"
    for body in (text_of(message), html_of(message)):
        assert "requested by Chief Dana Ortiz, Springfield Police Department" in body
    assert "REQUEST FOR ASSISTANCE" in text_of(message)
    assert "Request for assistance" in html_of(message)


def test_the_task_running_again_sends_nothing_more(smtp_sink, django_capture_on_commit_callbacks):
    invitations = send(
        PollFactory(target_agencies=agencies_with_contacts(3)), django_capture_on_commit_callbacks
    )
    assert len(smtp_sink.messages) == 3

    tasks.deliver_invitations([i.pk for i in invitations])  # a redelivered task

    assert len(smtp_sink.messages) == 3
    assert {i.attempts for i in Invitation.objects.all()} == {1}


def test_pressing_send_twice_sends_once(smtp_sink, django_capture_on_commit_callbacks):
    poll = PollFactory(target_agencies=agencies_with_contacts(2))
    send(poll, django_capture_on_commit_callbacks)

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(services.PollNotDraft),
    ):
        services.poll_send(poll=poll)

    assert callbacks == []
    assert Invitation.objects.filter(poll=poll).count() == 2
    assert len(smtp_sink.messages) == 2


# Failures and retries ---------------------------------------------------------------------------


def test_two_451s_then_accepted_sends_once(smtp_sink):
    [invitation] = queued_poll()
    smtp_sink.fail_next(2, "451 4.3.0 try later")

    rounds = deliver_until_done([invitation.pk])

    assert rounds == 3
    assert len(smtp_sink.rejected) == 2
    assert len(smtp_sink.messages) == 1
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.SENT
    assert invitation.attempts == 3
    assert invitation.failure_reason == ""


def test_first_451_is_returned_for_retry_and_queued(smtp_sink):
    [invitation] = queued_poll()
    smtp_sink.fail_next(1, "451 4.3.0 try later")

    retry = services.invitations_deliver(invitation_ids=[invitation.pk])

    assert retry == [invitation.pk]
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.QUEUED
    assert "451" in invitation.failure_reason
    assert smtp_sink.messages == []


def test_the_task_retries_451s_until_accepted(smtp_sink):
    [invitation] = queued_poll()
    smtp_sink.fail_next(2, "451 4.3.0 try later")

    countdowns = run_task_like_a_worker([invitation.pk])

    assert countdowns == [30, 60]
    assert len(smtp_sink.messages) == 1
    invitation.refresh_from_db()
    assert (invitation.state, invitation.attempts) == (Invitation.State.SENT, 3)


def test_a_550_address_fails_and_the_others_are_sent(smtp_sink, django_capture_on_commit_callbacks):
    agencies = agencies_with_contacts(3)
    bad = agencies[1].contacts.get().email
    smtp_sink.refuse(bad, "550 5.1.1 no such user")

    send(PollFactory(target_agencies=agencies), django_capture_on_commit_callbacks)

    failed = Invitation.objects.get(email=bad)
    assert failed.state == Invitation.State.FAILED
    assert "550" in failed.failure_reason
    assert failed.sent_at is None
    assert failed.attempts == 1  # permanent: never retried
    assert smtp_sink.to(bad) == []
    others = Invitation.objects.exclude(pk=failed.pk)
    assert {i.state for i in others} == {Invitation.State.SENT}
    assert sorted(r for m in smtp_sink.messages for r in m.rcpt_tos) == sorted(
        i.email for i in others
    )


def test_server_down_puts_invitations_back_for_retry(smtp_sink):
    invitations = queued_poll(2)
    smtp_sink.stop()

    retry = services.invitations_deliver(invitation_ids=[i.pk for i in invitations])

    assert sorted(retry) == [i.pk for i in invitations]
    for invitation in invitations:
        invitation.refresh_from_db()
        assert invitation.state == Invitation.State.QUEUED
        assert invitation.attempts == 1
        assert invitation.failure_reason  # the connection error, for the coordinator


def test_server_down_the_task_gives_up_after_max_retries(smtp_sink):
    [invitation] = queued_poll()
    smtp_sink.stop()

    countdowns = run_task_like_a_worker([invitation.pk])

    assert countdowns == [30, 60, 120, 240, 480]
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.FAILED
    assert invitation.attempts == tasks.MAX_RETRIES + 1
    assert invitation.failure_reason
    assert invitation.sent_at is None


def test_give_up_fails_only_what_is_still_queued(smtp_sink):
    down, sent = queued_poll(2)
    services.invitations_deliver(invitation_ids=[sent.pk])
    smtp_sink.stop()
    assert services.invitations_deliver(invitation_ids=[down.pk]) == [down.pk]

    services.invitations_give_up(invitation_ids=[down.pk, sent.pk])

    down.refresh_from_db()
    sent.refresh_from_db()
    assert down.state == Invitation.State.FAILED
    assert sent.state == Invitation.State.SENT


def test_requeue_stuck_frees_old_claims_only(smtp_sink):
    stuck, busy = queued_poll(2)
    for invitation in (stuck, busy):
        assert services.invitation_claim(invitation_id=invitation.pk)
    now = timezone.now()
    Invitation.objects.filter(pk=stuck.pk).update(claimed_at=now - datetime.timedelta(minutes=20))
    Invitation.objects.filter(pk=busy.pk).update(claimed_at=now - datetime.timedelta(minutes=1))

    ids = services.invitations_requeue_stuck()

    assert ids == [stuck.pk]
    stuck.refresh_from_db()
    busy.refresh_from_db()
    assert stuck.state == Invitation.State.QUEUED
    assert busy.state == Invitation.State.SENDING

    tasks.deliver_invitations(ids)

    [received] = smtp_sink.messages
    assert received.rcpt_tos == [stuck.email]
    stuck.refresh_from_db()
    assert stuck.state == Invitation.State.SENT
    assert stuck.attempts == 2


def test_a_451_while_sending_eagerly_does_not_break_send(
    smtp_sink, django_capture_on_commit_callbacks
):
    """The embedded default (no broker) retries at once instead of failing the request."""
    agencies = agencies_with_contacts(2)
    smtp_sink.fail_next(1, "451 4.3.0 try later")

    send(PollFactory(target_agencies=agencies), django_capture_on_commit_callbacks)

    states = sorted(Invitation.objects.values_list("state", flat=True))
    assert states == [Invitation.State.SENT, Invitation.State.SENT]
    assert len(smtp_sink.rejected) == 1
    assert len(smtp_sink.messages) == 2


def test_sweep_picks_up_a_queued_invitation_whose_retry_was_lost(smtp_sink):
    [invitation] = queued_poll()
    smtp_sink.fail_next(1, "451 4.3.0 try later")
    assert services.invitations_deliver(invitation_ids=[invitation.pk]) == [invitation.pk]
    assert services.invitations_requeue_stuck() == []  # its retry is still due
    Invitation.objects.filter(pk=invitation.pk).update(
        claimed_at=timezone.now() - datetime.timedelta(minutes=20)
    )
    assert services.invitations_requeue_stuck() == [invitation.pk]
    assert services.invitations_deliver(invitation_ids=[invitation.pk]) == []
    assert len(smtp_sink.messages) == 1


# Reply links ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "heading"),
    [(Poll.State.CLOSED, "This poll is closed"), (Poll.State.CANCELLED, "This poll was cancelled")],
)
def test_the_link_is_gone_when_the_poll_ends(
    client, smtp_sink, django_capture_on_commit_callbacks, state, heading
):
    poll = PollFactory(target_agencies=agencies_with_contacts(1))
    send(poll, django_capture_on_commit_callbacks)
    path = reply_path(smtp_sink.messages[0].message)
    assert client.get(path).status_code == 200

    Poll.objects.filter(pk=poll.pk).update(state=state, closed_at=timezone.now())
    response = client.get(path)

    assert response.status_code == 410
    assert heading in response.text
    assert "Nothing you send through this link is recorded" in response.text


def test_a_revoked_invitation_link_is_gone(client, smtp_sink, django_capture_on_commit_callbacks):
    [invitation] = send(
        PollFactory(target_agencies=agencies_with_contacts(1)), django_capture_on_commit_callbacks
    )
    path = reply_path(smtp_sink.messages[0].message)

    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=timezone.now())
    response = client.get(path)

    assert response.status_code == 410
    assert "This link was withdrawn" in response.text


def test_a_made_up_token_is_not_found(client):
    response = client.get(reverse("surveys:reply", args=["not-a-real-token"]))

    assert response.status_code == 404
    assert "This link is not valid" in response.text


def test_a_link_from_a_superseded_attempt_is_not_found(client, smtp_sink):
    [invitation] = queued_poll()
    smtp_sink.fail_next(1, "451 4.3.0 try later")
    deliver_until_done([invitation.pk])

    [first_attempt] = smtp_sink.rejected
    [delivered] = smtp_sink.messages
    old, new = reply_path(first_attempt.message), reply_path(delivered.message)
    assert old != new
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_a_redelivered_email_replaces_the_earlier_link(client, smtp_sink):
    """A worker sent the email, then died before marking it sent: the contact gets two."""
    [invitation] = queued_poll()
    services.invitations_deliver(invitation_ids=[invitation.pk])
    Invitation.objects.filter(pk=invitation.pk).update(
        state=Invitation.State.SENDING,
        claimed_at=timezone.now() - datetime.timedelta(minutes=20),
    )

    tasks.deliver_invitations(services.invitations_requeue_stuck())

    first, second = smtp_sink.messages
    assert first.rcpt_tos == second.rcpt_tos == [invitation.email]
    old = client.get(reply_path(first.message))
    assert old.status_code == 404
    assert "replaced by a newer email" in old.text
    assert client.get(reply_path(second.message)).status_code == 200


def test_the_link_is_closed_once_the_deadline_passes(
    client, smtp_sink, django_capture_on_commit_callbacks
):
    poll = PollFactory(target_agencies=agencies_with_contacts(1))
    send(poll, django_capture_on_commit_callbacks)
    path = reply_path(smtp_sink.messages[0].message)
    Poll.objects.filter(pk=poll.pk).update(deadline=timezone.now() - datetime.timedelta(seconds=1))
    response = client.get(path)  # before the beat job has closed it
    assert response.status_code == 410 and "closed" in response.text
