"""Reminders to the silent, escalation to alternates, closing at the deadline: on an injected
clock (no sleeps), through the real SMTP sink."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact
from readiness.models import AuditEvent
from surveys import chasing, delivery
from surveys.models import Invitation, Poll
from tests.factories import ContactFactory

from .factories import PollFactory
from .test_delivery import agencies_with_contacts, reply_path, send

pytestmark = pytest.mark.django_db
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def chase(django_capture_on_commit_callbacks):
    """Run the beat job at a given time, with its emails sent as a worker would."""

    def run(at):
        with django_capture_on_commit_callbacks(execute=True):
            return chasing.polls_chase(now=at)

    return run


@pytest.fixture
def poll(smtp_sink, django_capture_on_commit_callbacks):
    poll = PollFactory(
        target_agencies=agencies_with_contacts(3),
        deadline=timezone.now() + 30 * HOUR,
        reminder_hours_before=[24, 4],
    )
    send(poll, django_capture_on_commit_callbacks)
    return poll


def to(smtp_sink, subject_start: str) -> list[str]:
    return sorted(
        m.rcpt_tos[0] for m in smtp_sink.messages if m.message["Subject"].startswith(subject_start)
    )


def test_reminders_only_to_the_silent_on_schedule(poll, smtp_sink, chase):
    answered = Invitation.objects.filter(poll=poll).first()
    Invitation.objects.filter(pk=answered.pk).update(replied_at=timezone.now())
    silent = sorted(Invitation.objects.exclude(pk=answered.pk).values_list("email", flat=True))

    assert chase(timezone.now())["reminded"] == 0  # 30 h before: nothing due
    assert chase(poll.deadline - 23 * HOUR)["reminded"] == 2  # the 24-hour reminder
    assert chase(poll.deadline - 22 * HOUR)["reminded"] == 0  # not twice
    assert chase(poll.deadline - 3 * HOUR)["reminded"] == 2  # the 4-hour reminder
    assert to(smtp_sink, "Reminder:") == sorted(silent * 2)
    # A reminder carries a fresh link, and the link in the first email still works.
    theirs = [m for m in smtp_sink.messages if m.rcpt_tos[0] == silent[0]]
    assert "REMINDER" in theirs[-1].message.get_body(("plain",)).get_content()
    links = {reply_path(m.message) for m in theirs}
    assert len(links) == 3  # the invitation and two reminders
    from django.test import Client

    for link in links:
        assert Client().get(link).status_code == 200


def test_remind_the_silent_now(
    client, coordinator, poll, smtp_sink, django_capture_on_commit_callbacks
):
    Invitation.objects.update(sent_at=timezone.now() - HOUR)  # sent an hour ago
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:poll-remind", args=[poll.pk]))
        client.post(reverse("surveys:poll-remind", args=[poll.pk]))  # a double click
    assert len(to(smtp_sink, "Reminder:")) == 3
    assert [e.changes for e in AuditEvent.objects.filter(action="poll.remind").order_by("id")] == [
        {"reminded": 3},
        {"reminded": 0},
    ]
    link = reply_path(
        next(m for m in smtp_sink.messages if m.message["Subject"].startswith("Reminder")).message
    )
    assert client.get(link).status_code == 200


def test_remind_now_says_why_nobody_was_reminded_and_when_it_can(
    client, coordinator, poll, smtp_sink, django_capture_on_commit_callbacks, clock
):
    """Sent a minute ago: nobody can be reminded yet, and the page says why and from when."""
    Invitation.objects.update(sent_at=timezone.now() - datetime.timedelta(minutes=1))
    client.force_login(coordinator)
    page = client.post(reverse("surveys:poll-remind", args=[poll.pk]), follow=True).text
    possible = timezone.localtime(timezone.now() + datetime.timedelta(minutes=9))
    assert (
        "Nobody was reminded: the contacts of the 3 silent agencies were emailed less than" in page
    )
    assert f"Reminding is possible again from {possible:%H:%M}." in page
    assert to(smtp_sink, "Reminder:") == []
    Invitation.objects.update(replied_at=timezone.now())  # everyone answers
    page = client.post(reverse("surveys:poll-remind", args=[poll.pk]), follow=True).text
    assert "Every agency asked has answered: there is nobody to remind." in page


def test_escalation_to_alternates_after_the_delay(
    smtp_sink, chase, django_capture_on_commit_callbacks
):
    agencies = agencies_with_contacts(2)
    quiet, answering = agencies
    ContactFactory(agency=quiet, role=Contact.Role.ALTERNATE, email="alt@quiet.example")
    ContactFactory(agency=answering, role=Contact.Role.ALTERNATE, email="alt@answering.example")
    poll = PollFactory(
        target_agencies=agencies, escalate_after_hours=2, deadline=timezone.now() + 48 * HOUR
    )
    send(poll, django_capture_on_commit_callbacks)
    Invitation.objects.filter(agency=answering).update(replied_at=timezone.now())

    assert chase(timezone.now() + HOUR)["escalated"] == 0  # too early
    assert chase(timezone.now() + 3 * HOUR)["escalated"] == 1
    assert chase(timezone.now() + 4 * HOUR)["escalated"] == 0  # once
    escalations = [m for m in smtp_sink.messages if m.rcpt_tos == ["alt@quiet.example"]]
    assert len(escalations) == 1
    body = escalations[0].message.get_body(("plain",)).get_content()
    assert "alternate contact" in body and "has not answered" in body
    assert Invitation.objects.get(email="alt@quiet.example").is_escalation


def test_poll_closes_at_its_deadline_and_the_coordinator_gets_a_summary(
    poll, smtp_sink, chase, client
):
    assert chase(poll.deadline - HOUR)["closed"] == 0  # (both reminders are due: one email)
    address = smtp_sink.messages[0].rcpt_tos[0]
    link = reply_path([m for m in smtp_sink.messages if m.rcpt_tos == [address]][-1].message)
    assert client.get(link).status_code == 200
    assert chase(poll.deadline + datetime.timedelta(seconds=1))["closed"] == 1
    assert chase(poll.deadline + HOUR)["closed"] == 0
    poll.refresh_from_db()
    assert poll.state == Poll.State.CLOSED
    summaries = [m for m in smtp_sink.messages if m.message["Subject"].startswith("Closed:")]
    assert [m.rcpt_tos for m in summaries] == [[poll.created_by.email]]
    assert "Agencies asked: 3" in summaries[0].message.get_content()
    assert client.get(link).status_code == 410
    # After closing, nobody is reminded any more.
    assert chase(poll.deadline + 2 * HOUR)["reminded"] == 0


def test_no_reminder_for_a_time_that_passed_before_sending(
    smtp_sink, chase, django_capture_on_commit_callbacks
):
    # Sent 3 hours before the deadline with reminders at 24 and 4 hours: both times are past.
    poll = PollFactory(
        target_agencies=agencies_with_contacts(2),
        reminder_hours_before=[24, 4],
        deadline=timezone.now() + 3 * HOUR,
    )
    send(poll, django_capture_on_commit_callbacks)
    assert chase(timezone.now() + datetime.timedelta(minutes=1))["reminded"] == 0
    assert to(smtp_sink, "Reminder:") == []


def test_extending_the_deadline_moves_the_reminders(poll, smtp_sink, chase):
    assert chase(poll.deadline - 3 * HOUR)["reminded"] == 3
    Poll.objects.filter(pk=poll.pk).update(deadline=poll.deadline + 48 * HOUR)
    poll.refresh_from_db()
    assert chase(poll.deadline - 25 * HOUR)["reminded"] == 0
    assert chase(poll.deadline - 23 * HOUR)["reminded"] == 3  # the 24-hour one, again


def test_cancel_withdraws_invitations_not_yet_sent(
    client, coordinator, smtp_sink, django_capture_on_commit_callbacks
):
    from .test_delivery import queued_poll

    invitations = queued_poll(2)  # sent, but delivery has not run yet
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("surveys:poll-cancel", args=[invitations[0].poll_id]), {"confirm": "yes"}
        )
    delivery.invitations_deliver(invitation_ids=[i.pk for i in invitations])
    assert smtp_sink.messages == []  # neither the invitation nor a stand-down: never asked
    assert set(Invitation.objects.values_list("state", flat=True)) == {Invitation.State.FAILED}


def test_a_bounced_primary_is_escalated_too(smtp_sink, chase, django_capture_on_commit_callbacks):
    [agency] = agencies_with_contacts(1)
    primary = Contact.objects.get(agency=agency)
    smtp_sink.refuse(primary.email, "550 5.1.1 no such user")
    ContactFactory(agency=agency, role=Contact.Role.ALTERNATE, email="alt@bounced.example")
    poll = PollFactory(
        target_agencies=[agency], escalate_after_hours=1, deadline=timezone.now() + 48 * HOUR
    )
    send(poll, django_capture_on_commit_callbacks)
    assert Invitation.objects.get(contact=primary).state == Invitation.State.FAILED
    assert chase(timezone.now() + 2 * HOUR)["escalated"] == 1
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["alt@bounced.example"]]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_escalation_beside_another_flow_on_its_poll_cannot_deadlock(postgres):
    """Every flow that gives out reply codes locks its poll's row first, then the codes' lock.
    A flow holding the poll (a wave, agencies added) that then asks for the codes' lock must
    not meet an escalation of the same poll holding the codes' lock and waiting for the row:
    PostgreSQL would abort one of them. Here the escalation waits for the row, then runs."""
    from django.db import transaction

    from surveys import compose
    from surveys.channels import sms
    from tests.concurrency import hold_then_run

    [agency] = agencies_with_contacts(1)
    ContactFactory(
        agency=agency,
        role=Contact.Role.ALTERNATE,
        email="alt@held.example",
        mobile="+13125550177",
        channels="both",
    )  # texts: it takes the codes' lock
    poll = PollFactory(target_agencies=[agency], deadline=timezone.now() + 48 * HOUR)
    compose.poll_send(poll=poll)
    primary = Invitation.objects.get(poll=poll)
    escalated = []

    def other_flow(waiting):  # as wave_send or poll_add_agencies: the poll's row, then codes
        with transaction.atomic():
            Poll.objects.select_for_update().get(pk=poll.pk)
            waiting()  # until the escalation is waiting
            sms.lock_reply_codes()

    def escalate():
        escalated.append(chasing.escalate_now(invitation=primary, reason="550 bounced"))

    assert not hold_then_run(other_flow, escalate)  # a deadlock would abort one of them
    assert escalated == [2]
    assert Invitation.objects.filter(poll=poll, is_escalation=True).count() == 2  # email, text
