"""Invitation delivery to a real SMTP server on 127.0.0.1: send, retry, give up, reply links.

Celery runs eagerly in tests: `poll_send` queues delivery on commit and the captured callbacks
run the task in the test. Retries are driven deterministically, never by waiting.
"""

import datetime
import re
from collections import Counter

import pytest
from celery.exceptions import Retry
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact
from surveys import compose, delivery, tasks
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
        compose.poll_send(poll=poll)
    return list(Invitation.objects.filter(poll=poll).order_by("pk"))


def queued_poll(n: int = 1, **kwargs) -> list[Invitation]:
    """A sent poll whose delivery task has not run yet (no on_commit capture)."""
    poll = PollFactory(target_agencies=agencies_with_contacts(n), **kwargs)
    compose.poll_send(poll=poll)  # the test transaction never commits: nothing is queued
    return list(Invitation.objects.filter(poll=poll).order_by("pk"))


def deliver(invitation_ids: list[int], **kwargs) -> list[int]:
    """One pass of the service; returns what is left queued for a retry."""
    return delivery.invitations_deliver(invitation_ids=invitation_ids, **kwargs).pending


def deliver_until_done(invitation_ids: list[int], *, max_rounds: int = 10) -> int:
    """Call the service the way Celery retries would (each retry when it is due), until nothing
    is left to retry."""
    for rounds in range(1, max_rounds + 1):
        invitation_ids = deliver(invitation_ids, backoff=False)
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


def test_the_html_email_lays_out_for_a_phone(smtp_sink, django_capture_on_commit_callbacks):
    send(PollFactory(target_agencies=agencies_with_contacts(1)), django_capture_on_commit_callbacks)
    html = html_of(smtp_sink.messages[0].message)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


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
        pytest.raises(compose.PollNotDraft),
    ):
        compose.poll_send(poll=poll)

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

    retry = deliver([invitation.pk])

    assert retry == [invitation.pk]
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.QUEUED
    assert "451" in invitation.failure_reason
    assert invitation.attempts == 1 and invitation.next_attempt_at is not None
    # Not due yet: a task run again at once takes nothing and leaves it queued.
    assert deliver([invitation.pk]) == [invitation.pk]
    invitation.refresh_from_db()
    assert invitation.attempts == 1
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


def test_bad_recipients_cost_only_themselves(smtp_sink, django_capture_on_commit_callbacks):
    """A chunk of 100 with 5 bad recipients: servers that hang up after DATA (twice) or at
    RCPT, a 451 that clears, a 550. The other 95 go out on the first pass over reconnected
    connections; each bad one ends with its own reason after its own attempts."""
    agencies = agencies_with_contacts(100)
    emails = [a.contacts.get().email for a in agencies]
    after_data, at_rcpt, busy, unknown, after_data_2 = (emails[i] for i in (0, 17, 50, 51, 99))
    smtp_sink.drop(after_data, "data")
    smtp_sink.drop(after_data_2, "data")
    smtp_sink.drop(at_rcpt, "rcpt")
    smtp_sink.fail_for(busy, 1, "451 4.7.1 greylisted, try later")
    smtp_sink.refuse(unknown, "550 5.1.1 no such user")
    poll = PollFactory(target_agencies=agencies)
    compose.poll_send(poll=poll)  # not committed: the test drives the task
    ids = list(Invitation.objects.filter(poll=poll).order_by("pk").values_list("pk", flat=True))
    assert len(ids) == delivery.DELIVERY_CHUNK

    pending = deliver(ids)

    good = set(emails) - {after_data, at_rcpt, busy, unknown, after_data_2}
    received = {r for m in smtp_sink.messages for r in m.rcpt_tos}
    assert good <= received and len(good) == 95
    assert Invitation.objects.filter(state=Invitation.State.SENT).count() == 95
    by_email = {i.email: i for i in Invitation.objects.all()}
    assert sorted(pending) == sorted(by_email[e].pk for e in (after_data, at_rcpt, busy,
                                                              after_data_2))  # fmt: skip
    assert by_email[unknown].state == Invitation.State.FAILED
    assert by_email[unknown].failure_reason.startswith("550") and by_email[unknown].attempts == 1

    countdowns = run_task_like_a_worker(pending)

    # From the second attempt on (the first pass above was the first): 1, 2, 4, 8 minutes.
    assert countdowns == list(delivery.RETRY_BACKOFF[1:])
    by_email = {i.email: i for i in Invitation.objects.all()}
    assert (by_email[busy].state, by_email[busy].attempts) == (Invitation.State.SENT, 2)
    for address in (after_data, at_rcpt, after_data_2):
        invitation = by_email[address]
        assert invitation.state == Invitation.State.FAILED, address
        assert invitation.attempts == delivery.MAX_ATTEMPTS
        assert "Connection unexpectedly closed" in invitation.failure_reason
    assert Invitation.objects.filter(state=Invitation.State.SENT).count() == 96
    # Nobody healthy was emailed twice.
    counts = Counter(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert all(counts[e] == 1 for e in good | {busy})


def test_server_down_puts_invitations_back_for_retry(smtp_sink):
    invitations = queued_poll(2)
    smtp_sink.stop()

    retry = deliver([i.pk for i in invitations])

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
    assert invitation.attempts == delivery.MAX_ATTEMPTS
    assert invitation.failure_reason
    assert invitation.sent_at is None


def test_each_invitation_has_its_own_attempts(smtp_sink):
    """Attempts and back-off belong to the invitation, not to the task that carried it: one
    that failed before is given up after its own last attempt, while a fresh one in the same
    chunk starts its count."""
    old, fresh = queued_poll(2)
    Invitation.objects.filter(pk=old.pk).update(attempts=delivery.MAX_ATTEMPTS - 1)
    smtp_sink.stop()

    assert deliver([old.pk, fresh.pk]) == [fresh.pk]

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.state, old.attempts) == (Invitation.State.FAILED, delivery.MAX_ATTEMPTS)
    assert old.failure_reason and old.next_attempt_at is None
    assert (fresh.state, fresh.attempts) == (Invitation.State.QUEUED, 1)
    assert fresh.next_attempt_at is not None


def test_requeue_stuck_frees_stale_claims_only(smtp_sink):
    stuck, busy = queued_poll(2)
    for invitation in (stuck, busy):
        assert delivery.invitation_claim(invitation_id=invitation.pk)
    now = timezone.now()
    Invitation.objects.filter(pk=stuck.pk).update(claimed_at=now - datetime.timedelta(minutes=3))
    Invitation.objects.filter(pk=busy.pk).update(claimed_at=now - datetime.timedelta(seconds=30))

    stuck_rows = delivery.invitations_requeue_stuck()

    assert stuck_rows == [(stuck.pk, 0)]
    stuck.refresh_from_db()
    busy.refresh_from_db()
    assert stuck.state == Invitation.State.QUEUED
    assert busy.state == Invitation.State.SENDING

    tasks.deliver_invitations([stuck.pk])

    [received] = smtp_sink.messages
    assert received.rcpt_tos == [stuck.email]
    stuck.refresh_from_db()
    assert stuck.state == Invitation.State.SENT
    assert stuck.attempts == 1  # the dead worker never got to try it


def test_a_restarted_worker_takes_back_what_its_predecessor_held(smtp_sink):
    """A worker killed mid-chunk, restarted under the same name: its claims are taken back at
    once (however fresh), and another worker's are left alone."""
    mine, other = queued_poll(2)
    delivery.invitations_claim(invitation_ids=[mine.pk], claimed_by="celery@a task-1")
    delivery.invitations_claim(invitation_ids=[other.pk], claimed_by="celery@b task-2")

    assert delivery.invitations_requeue_stuck(worker="celery@a") == [(mine.pk, 0)]

    assert Invitation.objects.get(pk=mine.pk).state == Invitation.State.QUEUED
    assert Invitation.objects.get(pk=other.pk).state == Invitation.State.SENDING


def test_a_redelivered_task_takes_back_its_own_dead_claim(smtp_sink):
    """acks_late: the same task (same id) delivered again after its worker died takes back the
    rows it held; a different task does not."""
    [invitation] = queued_poll()
    delivery.invitations_claim(invitation_ids=[invitation.pk], claimed_by="celery@a task-1")

    assert deliver([invitation.pk], task_id="task-2") == []
    assert smtp_sink.messages == []
    assert Invitation.objects.get(pk=invitation.pk).state == Invitation.State.SENDING

    assert deliver([invitation.pk], claimed_by="celery@a task-1", task_id="task-1") == []
    assert [m.rcpt_tos for m in smtp_sink.messages] == [[invitation.email]]
    assert Invitation.objects.get(pk=invitation.pk).state == Invitation.State.SENT


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
    assert deliver([invitation.pk]) == [invitation.pk]
    assert delivery.invitations_requeue_stuck() == []  # its retry is still due
    Invitation.objects.filter(pk=invitation.pk).update(
        next_attempt_at=timezone.now() - datetime.timedelta(minutes=3)
    )
    assert delivery.invitations_requeue_stuck() == [(invitation.pk, 0)]
    assert deliver([invitation.pk]) == []
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


def test_a_link_from_an_earlier_attempt_still_works(client, smtp_sink):
    """A 451 may follow a message the server kept: the link it carried must not die."""
    [invitation] = queued_poll()
    smtp_sink.fail_next(1, "451 4.3.0 try later")
    deliver_until_done([invitation.pk])

    [first_attempt] = smtp_sink.rejected
    [delivered] = smtp_sink.messages
    old, new = reply_path(first_attempt.message), reply_path(delivered.message)
    assert old != new
    assert client.get(old).status_code == 200
    assert client.get(new).status_code == 200


def test_a_redelivered_email_keeps_the_earlier_link_working(client, smtp_sink):
    """A worker sent the email, then died before marking it sent: the contact gets two, and
    both links answer for the agency until the poll ends."""
    [invitation] = queued_poll()
    deliver([invitation.pk])
    Invitation.objects.filter(pk=invitation.pk).update(
        state=Invitation.State.SENDING,
        claimed_at=timezone.now() - datetime.timedelta(minutes=3),
    )

    tasks.deliver_invitations([pk for pk, _ in delivery.invitations_requeue_stuck()])

    first, second = smtp_sink.messages
    assert first.rcpt_tos == second.rcpt_tos == [invitation.email]
    for message in (first, second):
        page = client.get(reply_path(message.message))
        assert page.status_code == 200 and invitation.agency.name in page.text
    Poll.objects.filter(pk=invitation.poll_id).update(state=Poll.State.CLOSED)
    assert client.get(reply_path(first.message)).status_code == 410


def test_the_link_is_closed_once_the_deadline_passes(
    client, smtp_sink, django_capture_on_commit_callbacks
):
    poll = PollFactory(target_agencies=agencies_with_contacts(1))
    send(poll, django_capture_on_commit_callbacks)
    path = reply_path(smtp_sink.messages[0].message)
    Poll.objects.filter(pk=poll.pk).update(deadline=timezone.now() - datetime.timedelta(seconds=1))
    response = client.get(path)  # before the beat job has closed it
    assert response.status_code == 410 and "closed" in response.text


# Claims under pressure ---------------------------------------------------------------------------


def test_a_worker_that_lost_its_claim_sends_nothing_more(smtp_sink):
    """A worker stalled past the stale-claim cut-off: the sweep gave its rows to another worker,
    which sent them. When the stalled one goes on, it finds the claim gone and sends nothing."""
    invitations = queued_poll(3)
    ids = [i.pk for i in invitations]
    stalled_claim, won = delivery.invitations_claim(invitation_ids=ids, claimed_by="celery@a t1")
    assert sorted(won) == ids
    Invitation.objects.update(claimed_at=timezone.now() - delivery.STALE_CLAIM * 2)
    assert [pk for pk, _ in delivery.invitations_requeue_stuck()] == ids
    assert deliver(ids, claimed_by="celery@b t2", task_id="t2") == []
    assert len(smtp_sink.messages) == 3

    delivery._deliver_claimed(stalled_claim, won)  # the stalled worker wakes up

    assert len(smtp_sink.messages) == 3
    assert set(Invitation.objects.values_list("state", "attempts")) == {("sent", 1)}


def test_claims_update_the_row_they_checked():
    """The claim's UPDATE filters the invitation table itself (the poll by a subquery), so on
    PostgreSQL a row another worker claimed meanwhile is re-checked, not taken twice."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    [invitation] = queued_poll()
    with CaptureQueriesContext(connection) as queries:
        delivery.invitations_claim(invitation_ids=[invitation.pk])
    [update] = [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]
    assert "JOIN" not in update.upper()
    assert '"surveys_invitation"."state"' in update  # re-checked, not hidden in a subquery


def test_queued_invitations_of_a_poll_that_ended_are_failed_not_stuck(smtp_sink):
    [invitation] = queued_poll()
    smtp_sink.fail_next(1, "451 4.3.0 try later")
    assert deliver([invitation.pk]) == [invitation.pk]
    Poll.objects.filter(pk=invitation.poll_id).update(state=Poll.State.CLOSED)

    assert deliver([invitation.pk]) == []

    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.FAILED
    assert invitation.failure_reason == "not sent: the poll ended first"


def test_a_message_that_kills_its_worker_every_time_is_given_up(smtp_sink):
    [invitation] = queued_poll()
    Invitation.objects.filter(pk=invitation.pk).update(
        state=Invitation.State.SENDING, attempts=delivery.MAX_ATTEMPTS,
        claimed_at=timezone.now() - delivery.STALE_CLAIM * 2,
    )  # fmt: skip
    assert delivery.invitations_requeue_stuck() == []
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.FAILED
    assert "stopped" in invitation.failure_reason
