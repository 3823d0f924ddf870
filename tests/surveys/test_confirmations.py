"""Answers' confirmation emails: kept due with their versions and sent by a worker, one queued
run for any number of answers, each confirmation claimed by one worker, tried again after a
transient failure and a dead worker's claim, given up on a permanent one; the link in them is a
fresh one to the same form."""

import datetime
import json
import re
import uuid
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from readiness.celery import app as celery_app
from surveys import reply_notices, selectors
from surveys.models import ReplyVersion

from . import test_replies
from .test_replies import answer, post

setup = test_replies.setup  # the fixture: an open poll's link, its agency and teams

pytestmark = pytest.mark.django_db

LEASE = datetime.timedelta(seconds=django_settings.CONFIRMATION_LEASE_SECONDS)


@pytest.fixture
def due(client, setup):
    """An answer by the emailed link, saved; its confirmation due (the commit's callbacks, which
    would send it, do not run in a test's transaction)."""
    assert post(client, setup, answer(setup)).status_code == 302
    version = ReplyVersion.objects.get()
    assert (version.confirmation, version.confirmation_attempts) == ("due", 0)
    return version


def state(version) -> tuple:
    version.refresh_from_db()
    return version.confirmation, version.confirmation_attempts, version.confirmation_claimed_at


def test_a_due_confirmation_is_sent_once_with_a_fresh_link_to_the_same_form(
    client, setup, due, smtp_sink
):
    now = timezone.now()
    assert reply_notices.confirmations_send(now=now) == {"sent": 1, "failed": 0, "later": 0}
    assert state(due) == ("sent", 1, None)
    assert reply_notices.confirmations_send(now=now + LEASE * 2)["sent"] == 0  # never again
    [mail] = smtp_sink.to(setup["invitation"].email)
    body = mail.message.get_content()
    assert "North SRT: officers: 8" in body and setup["token"] not in body
    [link] = re.findall(r"https?://\S+/r/[\w-]+/", body)
    page = client.get(urlsplit(link).path)
    assert page.status_code == 200 and 'name="version" value="1"' in page.text


def test_a_signed_in_commanders_confirmation_links_to_the_agencys_page(
    client, commander, smtp_sink, settings
):
    from .factories import open_invitation

    invitation, _ = open_invitation(agency=commander.agency)
    url = reverse("surveys:my-agency-reply", args=[invitation.poll_id])
    data = {"version": 0, "decision": "unavailable", "decline_reason": "All committed",
            "authorised_by_name": "Dana Reyes", "authorised_by_rank": "Chief"}  # fmt: skip
    client.force_login(commander)
    assert client.post(url, data).status_code == 302
    reply_notices.confirmations_send(now=timezone.now())
    [mail] = smtp_sink.to(commander.email)
    body = mail.message.get_content()
    assert settings.SITE_URL + url in body and "/r/" not in body


def test_a_claim_held_by_a_worker_that_died_is_taken_again_once_it_lapses(due, smtp_sink):
    claimed = timezone.now()
    ReplyVersion.objects.filter(pk=due.pk).update(confirmation_claimed_at=claimed)
    assert reply_notices.confirmations_send(now=claimed + LEASE / 2)["sent"] == 0
    assert not smtp_sink.messages
    assert reply_notices.confirmations_send(now=claimed + LEASE + LEASE / 60)["sent"] == 1
    assert len(smtp_sink.messages) == 1


def test_a_transient_failure_is_tried_again_after_the_claim_lapses(due, smtp_sink):
    smtp_sink.fail_next(1, "451 4.3.0 try later")
    now = timezone.now()
    assert reply_notices.confirmations_send(now=now)["later"] == 1
    assert state(due) == ("due", 1, now)
    assert reply_notices.confirmations_send(now=now + LEASE / 2)["sent"] == 0  # still held
    assert reply_notices.confirmations_send(now=now + LEASE * 2)["sent"] == 1
    assert state(due) == ("sent", 2, None)


def test_a_permanent_failure_or_too_many_transient_ones_gives_up(
    client, setup, due, smtp_sink, settings
):
    smtp_sink.refuse(setup["invitation"].email, "550 5.1.1 no such user")
    assert reply_notices.confirmations_send(now=timezone.now())["failed"] == 1
    assert state(due)[:2] == ("failed", 1)

    ReplyVersion.objects.update(confirmation="due", confirmation_attempts=0)
    smtp_sink.refuse(setup["invitation"].email, "451 4.2.1 mailbox busy")
    settings.CONFIRMATION_MAX_ATTEMPTS = 3
    now = timezone.now()
    for attempt in range(1, 4):
        done = reply_notices.confirmations_send(now=now + LEASE * 2 * attempt)
        assert done == ({"sent": 0, "failed": 1, "later": 0} if attempt == 3 else
                        {"sent": 0, "failed": 0, "later": 1})  # fmt: skip
    assert state(due)[:2] == ("failed", 3)
    assert reply_notices.confirmations_send(now=now + LEASE * 10) == {
        "sent": 0, "failed": 0, "later": 0,
    }  # fmt: skip


def test_a_mail_server_that_cannot_be_reached_gives_the_confirmations_back_untried(due, smtp_sink):
    smtp_sink.stop()
    for _ in range(8):  # an outage longer than the attempts allowed costs none of them
        done = reply_notices.confirmations_send(seconds=5)
        assert done == {"sent": 0, "failed": 0, "later": 0}
    assert state(due) == ("due", 0, None)


def test_a_confirmation_that_cannot_be_written_holds_up_no_other(
    client, setup, due, smtp_sink, monkeypatch, caplog
):
    assert post(client, setup, answer(setup, 1, note="Second")).status_code == 302
    second = ReplyVersion.objects.get(number=2)
    built = reply_notices._confirmation

    def broken(version, url):
        if version.pk == due.pk:
            raise ValueError("a template that breaks")
        return built(version, url)

    monkeypatch.setattr(reply_notices, "_confirmation", broken)
    done = reply_notices.confirmations_send(now=timezone.now())
    assert done == {"sent": 1, "failed": 1, "later": 0}
    assert (state(due)[0], state(second)[0]) == ("failed", "sent")
    assert "cannot be written" in caplog.text


def test_a_reissued_invitation_gets_no_fresh_link_in_a_waiting_confirmation(
    setup, due, smtp_sink, coordinator
):
    from surveys import inflight

    inflight.invitation_reissue(invitation=setup["invitation"])
    assert state(due)[0] == "failed"
    reply_notices.confirmations_send(now=timezone.now())
    assert not smtp_sink.to(setup["invitation"].email)


def test_an_answer_that_asks_no_confirmation_has_none_due(client, setup):
    from surveys import replies

    line = {"team": setup["teams"]["srt"], "officers": 4, "depart_minutes": 10,
            "travel_minutes": 50, "estimate": 60}  # fmt: skip
    replies.reply_submit(poll=setup["poll"], agency=setup["agency"], answer={
        "decision": "available", "authorised_by_name": "A", "authorised_by_rank": "B",
    }, lines=[line], base_version=0, invitation=setup["invitation"], confirm=False)  # fmt: skip
    assert ReplyVersion.objects.get().confirmation == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_many_answers_queue_one_run_and_a_started_run_lets_the_next_answer_queue_another(
    client, setup, redis_url, smtp_sink
):
    """Through the broker: however many answers commit while a run is queued, one message; a
    run that started lets the next answer queue the next run (nothing waits for beat)."""
    from django.core.cache import cache

    from surveys import jobs

    name = f"test-confirm-{uuid.uuid4().hex[:8]}"
    server = redis.Redis.from_url(redis_url)
    task = "surveys.tasks.send_reply_confirmations"
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, name
    cache.delete(f"jobs:queued:{task}")
    try:
        assert post(client, setup, answer(setup)).status_code == 302
        assert post(client, setup, answer(setup, 1, note="Second")).status_code == 302
        assert post(client, setup, answer(setup, 2, note="Third")).status_code == 302
        assert ReplyVersion.objects.filter(confirmation="due").count() == 3
        queued = [json.loads(m)["headers"]["task"] for m in server.lrange(name, 0, -1)]
        assert queued == [task]
        jobs.started(task)  # what the run does first
        assert reply_notices.confirmations_send() == {"sent": 3, "failed": 0, "later": 0}
        counted = selectors.activity_key(setup["poll"].pk)
        cache.set(counted, [1, 2, 3], 60)  # a dashboard's count, kept
        assert post(client, setup, answer(setup, 3, note="Fourth")).status_code == 302
        assert server.llen(name) == 2  # the next run
        assert cache.get(counted) is None  # forgotten in the same round trip
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        server.delete(name)
        cache.delete(f"jobs:queued:{task}")
    assert len(smtp_sink.to(setup["invitation"].email)) == 3
