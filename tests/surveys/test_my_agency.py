"""Signed-in commanders answer for their own agency; coordinators hear about answers."""

import datetime
import functools
import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from readiness.models import AuditEvent
from surveys import chasing, replies, selectors
from surveys.models import Poll, Reply, ReplyVersion

from ..factories import SpecialTeamFactory
from .factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db


def answer_for(team, version=0, officers=6):
    return {
        "version": version,
        "decision": "available",
        "authorised_by_name": "Chris Commander",
        "authorised_by_rank": "Captain",
        f"team-{team.pk}-officers": officers,
        f"team-{team.pk}-depart_minutes": 20,
        f"team-{team.pk}-travel_minutes": 40,
    }


@pytest.fixture
def asked(commander, agency, coordinator):
    """Three polls that asked the commander's agency (open, closed, cancelled), one that did not."""
    team = SpecialTeamFactory(agency=agency, members=10, name="County SRT")
    open_, _ = open_invitation(agency=agency, poll=PollFactory(state=Poll.State.OPEN,
                                                               created_by=coordinator))  # fmt: skip
    closed, _ = open_invitation(agency=agency, poll=PollFactory(state=Poll.State.CLOSED,
                                                                title="Last spring"))  # fmt: skip
    cancelled, _ = open_invitation(agency=agency, poll=PollFactory(state=Poll.State.CANCELLED))
    elsewhere, _ = open_invitation(poll=PollFactory(state=Poll.State.OPEN, title="Not yours"))
    return {"team": team, "open": open_.poll, "closed": closed.poll,
            "cancelled": cancelled.poll, "elsewhere": elsewhere.poll}  # fmt: skip


def test_my_agency_lists_the_polls_it_was_asked_with_answer_state(client, commander, asked):
    client.force_login(commander)
    page = client.get(reverse("surveys:my-agency"))
    assert page.status_code == 200
    text = page.text
    assert asked["open"].title in text and "Last spring" in text
    assert "Not yours" not in text
    assert text.index(asked["open"].title) < text.index("Last spring")  # open first
    assert "Not answered" in text and ">Answer</a>" in text


def test_open_polls_are_listed_most_urgent_first_with_time_left(client, commander, agency, clock):
    """A request for assistance due in 2 hours above a planning survey due in 2 days, above a
    poll whose deadline passed (not yet closed by the beat job)."""
    now = timezone.now()
    for title, purpose, deadline in [
        ("Survey in two days", "planning", now + datetime.timedelta(days=2)),
        ("Past its deadline", "planning", now - datetime.timedelta(minutes=5)),
        ("Request in two hours", "request", now + datetime.timedelta(hours=2)),
    ]:
        asker = {"requesting_agency": agency, "requesting_person": "Supt. Example"}
        poll = PollFactory(
            state=Poll.State.OPEN, title=title, purpose=purpose, deadline=deadline,
            sent_at=now - datetime.timedelta(hours=1), **(asker if purpose == "request" else {}),
        )  # fmt: skip
        open_invitation(agency=agency, poll=poll)
    client.force_login(commander)
    text = client.get(reverse("surveys:my-agency")).text
    order = [text.index(t) for t in ("Request in two hours", "Survey in two days",
                                     "Past its deadline")]  # fmt: skip
    assert order == sorted(order)
    assert "2\N{NO-BREAK SPACE}hours left" in text and "2\N{NO-BREAK SPACE}days left" in text


def test_a_signed_in_commander_answers_and_changes_the_answer(
    client, commander, asked, smtp_sink, django_capture_on_commit_callbacks
):
    client.force_login(commander)
    url = reverse("surveys:my-agency-reply", args=[asked["open"].pk])
    form = client.get(url)
    assert form.status_code == 200 and "County SRT" in form.text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, answer_for(asked["team"]))
    assert response.status_code == 302
    assert response["Location"] == reverse("surveys:my-agency-reply-done", args=[asked["open"].pk])
    reply = Reply.objects.get()
    assert reply.updated_by == commander and reply.updated_via is None
    version = ReplyVersion.objects.get()
    assert version.user == commander and version.author_email == commander.email
    event = AuditEvent.objects.get(action="reply.create")
    assert event.actor == commander
    [mail] = smtp_sink.to(commander.email)
    assert "http://" in mail.message.get_content() and url in mail.message.get_content()

    listing = client.get(reverse("surveys:my-agency")).text
    assert "Available, 6 officers" in listing and "Change answer" in listing
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, answer_for(asked["team"], version=1, officers=9))
    assert Reply.objects.get().officers == 9 and ReplyVersion.objects.count() == 2


def test_past_polls_are_read_only(client, commander, asked):
    client.force_login(commander)
    for poll in (asked["closed"], asked["cancelled"]):
        url = reverse("surveys:my-agency-reply", args=[poll.pk])
        page = client.get(url)
        assert page.status_code == 200
        assert "answers can no longer be changed" in page.text
        assert '<form method="post" class="reply-form"' not in page.text
        assert client.post(url, answer_for(asked["team"])).status_code == 410
    assert Reply.objects.count() == 0


def test_a_commander_cannot_reach_another_agencys_poll_or_teams(client, commander, asked):
    client.force_login(commander)
    assert (
        client.get(reverse("surveys:my-agency-reply", args=[asked["elsewhere"].pk])).status_code
        == 404
    )
    assert client.post(reverse("surveys:my-agency-reply", args=[asked["elsewhere"].pk]),
                       answer_for(asked["team"])).status_code == 404  # fmt: skip
    foreign = SpecialTeamFactory(members=30)
    response = client.post(
        reverse("surveys:my-agency-reply", args=[asked["open"].pk]),
        {**answer_for(asked["team"]), f"team-{foreign.pk}-officers": 3},
    )
    assert response.status_code == 422 and Reply.objects.count() == 0


def test_the_sender_gets_a_digest_not_a_message_per_answer(
    client, commander, asked, coordinator, smtp_sink, django_capture_on_commit_callbacks, settings
):
    settings.REPLY_DIGEST_MINUTES = 15
    poll = asked["open"]
    Poll.objects.filter(pk=poll.pk).update(reply_digest=True, sent_at=timezone.now())
    client.force_login(commander)
    url = reverse("surveys:my-agency-reply", args=[poll.pk])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, answer_for(asked["team"]))
        client.post(url, answer_for(asked["team"], version=1, officers=8))
    assert smtp_sink.to(coordinator.email) == []  # nothing per answer
    now = timezone.now() + datetime.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert chasing.polls_chase(now=now)["digests"] == 1
        assert chasing.polls_chase(now=now + datetime.timedelta(minutes=5))["digests"] == 0
    [digest] = smtp_sink.to(coordinator.email)
    body = digest.message.get_content()
    assert "2 new or changed answers" in body and "8 officers (changed, version 2)" in body
    # Nothing new since: no digest even after the interval.
    with django_capture_on_commit_callbacks(execute=True):
        later = now + datetime.timedelta(minutes=20)
        assert chasing.polls_chase(now=later)["digests"] == 0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stored", ["read", None], ids=["read-then-saved", "one-statement"])
def test_two_first_answers_at_once_save_one_and_report_a_conflict(postgres, agency, stored):
    """Two people answer for the same agency at the same moment, on PostgreSQL: one is saved,
    the other is told about it; neither overwrites the other silently. Whether the service
    reads the stored answer itself, or is told there is none (as the forms and texts tell it:
    then its check and writes are one statement)."""
    team = SpecialTeamFactory(agency=agency, members=10)
    invitation, _ = open_invitation(agency=agency)
    lines = [{"team": team, "estimate": 60, "officers": 5, "depart_minutes": 10,
              "travel_minutes": 60}]  # fmt: skip
    answer = {"decision": "available", "authorised_by_name": "A", "authorised_by_rank": "Chief"}
    read = {"stored": None} if stored is None else {}

    def submit(officers, barrier):
        barrier.wait()
        replies.reply_submit(
            poll=invitation.poll, agency=agency, answer=answer, base_version=0,
            lines=[{**lines[0], "officers": officers}], invitation=invitation, **read,
        )  # fmt: skip

    saved = one_saved_one_told(submit)
    reply = Reply.objects.get()
    assert (reply.officers, reply.version) == (saved, 1)
    assert [line.officers for line in reply.lines.all()] == [saved]
    version = ReplyVersion.objects.get()
    assert version.reply == reply and version.number == 1 and version.data["officers"] == saved
    assert AuditEvent.objects.get(action="reply.create").object_id == str(reply.pk)
    invitation.refresh_from_db()
    assert invitation.replied_at == reply.updated_at


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_closing_waits_for_an_answer_being_saved_and_an_answer_waits_for_a_close(postgres, agency):
    """The one-statement first answer holds the poll's row (FOR SHARE) as the transaction path
    did: a close waits for the answer to commit; an answer that meets a close in progress
    waits for it, then is refused. Never an answer saved into a closed poll."""
    from django.db import transaction

    from tests.concurrency import hold_then_run

    team = SpecialTeamFactory(agency=agency, members=10)
    invitation, _ = open_invitation(agency=agency)
    poll = invitation.poll
    line = {"team": team, "estimate": 60, "officers": 5, "depart_minutes": 10,
            "travel_minutes": 60}  # fmt: skip
    answer = {"decision": "available", "authorised_by_name": "A", "authorised_by_rank": "Chief"}
    submit = functools.partial(replies.reply_submit, poll=poll, agency=agency, answer=answer,
                               base_version=0, stored=None, lines=[line],
                               invitation=invitation, confirm=False)  # fmt: skip
    seen = {}

    def answering(waiting):
        with transaction.atomic():
            submit()
            seen["close waited"] = waiting()

    assert not hold_then_run(answering, lambda: chasing.poll_close(poll=poll))
    assert seen["close waited"] is True
    assert Reply.objects.get().officers == 5  # saved before the close took the poll
    assert Poll.objects.get(pk=poll.pk).state == Poll.State.CLOSED

    Reply.objects.all().delete()
    Poll.objects.filter(pk=poll.pk).update(state=Poll.State.OPEN, closed_at=None)
    refused = []

    def closing(waiting):
        with transaction.atomic():
            chasing.poll_close(poll=poll)
            seen["answer waited"] = waiting()

    def answer_now():
        try:
            submit()
        except replies.ReplyRefused as exc:
            refused.append(exc.reason)

    assert not hold_then_run(closing, answer_now)
    assert seen["answer waited"] is True and refused == ["closed"]
    assert not Reply.objects.exists()


def one_saved_one_told(submit) -> int:
    """Run submit(officers, barrier) for 3 and 7 officers in two threads at once: one must be
    saved and the other get a conflict showing it. Returns the officers saved."""
    barrier, outcomes = threading.Barrier(2), []

    def run(officers):
        try:
            submit(officers, barrier)
            outcomes.append(("saved", officers))
        except replies.ReplyConflict as exc:
            outcomes.append(("conflict", exc.current.officers))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in (3, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "saved"]
    saved = next(n for kind, n in outcomes if kind == "saved")
    assert next(n for kind, n in outcomes if kind == "conflict") == saved  # shown the winner
    return saved


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_changes_from_one_version_at_once_save_one_and_report_a_conflict(postgres, agency):
    """Two people change the same answer, both from version 1, at the same moment on
    PostgreSQL: the answer is saved over only while its version is the one read, so one
    change becomes version 2 and the other is told about it; no third version, no mix."""
    team = SpecialTeamFactory(agency=agency, members=10)
    invitation, _ = open_invitation(agency=agency)
    line = {"team": team, "estimate": 60, "officers": 5, "depart_minutes": 10,
            "travel_minutes": 60}  # fmt: skip
    answer = {"decision": "available", "authorised_by_name": "A", "authorised_by_rank": "Chief"}
    poll = invitation.poll
    replies.reply_submit(poll=poll, agency=agency, answer=answer, base_version=0, lines=[line],
                         invitation=invitation, confirm=False)  # fmt: skip

    def change(officers, barrier):
        stored = selectors.stored_reply(poll=poll, agency=agency)  # both read version 1
        barrier.wait()
        replies.reply_submit(
            poll=poll, agency=agency, answer=answer, base_version=1, stored=stored,
            lines=[{**line, "officers": officers}], invitation=invitation, confirm=False,
        )  # fmt: skip

    saved = one_saved_one_told(change)
    reply = Reply.objects.get()
    assert (reply.officers, reply.version) == (saved, 2)
    assert [line.officers for line in reply.lines.all()] == [saved]
    assert list(ReplyVersion.objects.order_by("number").values_list("number", flat=True)) == [1, 2]


def test_an_unchanged_answer_read_before_a_newer_one_is_a_conflict_not_nothing(agency):
    """The answer a form was built from is read without a lock: if a newer version was saved
    since, sending the old answer again unchanged is a conflict with the newer one, not
    'nothing changed' (which would tell the sender their figures stand)."""
    team = SpecialTeamFactory(agency=agency, members=10)
    invitation, _ = open_invitation(agency=agency)
    poll = invitation.poll
    line = {"team": team, "estimate": 60, "officers": 5, "depart_minutes": 10,
            "travel_minutes": 60}  # fmt: skip
    answer = {"decision": "available", "authorised_by_name": "A", "authorised_by_rank": "Chief"}
    submit = functools.partial(replies.reply_submit, poll=poll, agency=agency, answer=answer,
                               invitation=invitation, confirm=False)  # fmt: skip
    submit(base_version=0, lines=[line])
    read = selectors.stored_reply(poll=poll, agency=agency)  # version 1, 5 officers
    submit(base_version=1, lines=[{**line, "officers": 8}])  # someone else: version 2
    with pytest.raises(replies.ReplyConflict) as conflict:
        submit(base_version=1, lines=[line], stored=read)  # version 1 again, unchanged
    assert (conflict.value.current.version, conflict.value.current.officers) == (2, 8)
    # The same answer as the one stored now, from an old read, is nothing new.
    assert submit(base_version=1, lines=[{**line, "officers": 8}], stored=read) is None
    assert Reply.objects.get().version == 2 and ReplyVersion.objects.count() == 2
