"""A real Celery worker on the real Redis broker delivers a poll to a real SMTP server.

Needs REDIS_URL and PostgreSQL (CI has both; with CI=true their absence fails the test).
"""

from collections import Counter

import pytest
from django.db.models import Count

from readiness.celery import app as celery_app
from surveys import compose
from surveys.models import Invitation

from .conftest import wait_until
from .factories import PollFactory
from .test_delivery import agencies_with_contacts


@pytest.mark.django_db(transaction=True)
def test_worker_delivers_each_invitation_once(worker, smtp_sink):
    poll = PollFactory(target_agencies=agencies_with_contacts(12))
    assert compose.poll_send(poll=poll) == 12  # commits, then queues through Redis

    def all_sent():
        return Invitation.objects.filter(poll=poll, state=Invitation.State.SENT).count() == 12

    assert wait_until(all_sent), worker.stdout and Invitation.objects.values(
        "state", "failure_reason"
    )
    assert len(smtp_sink.messages) == 12
    assert len({m.rcpt_tos[0] for m in smtp_sink.messages}) == 12
    # Delivered twice (a redelivered message): nothing more is sent.
    ids = list(Invitation.objects.filter(poll=poll).values_list("pk", flat=True))
    celery_app.send_task("surveys.tasks.deliver_invitations", args=[ids], ignore_result=False).get(
        timeout=60
    )
    assert len(smtp_sink.messages) == 12


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_chunk_resumes_after_a_restart_without_beat(workers, smtp_sink):
    """SIGKILL while a chunk is half sent (one message in flight at a slow server), then a
    restart under the same name and no beat: everything is sent within two minutes, and only
    the message in flight at the kill may arrive twice."""
    agencies = agencies_with_contacts(30)
    poll = PollFactory(target_agencies=agencies)
    first = workers.start()
    assert compose.poll_send(poll=poll) == 30  # one chunk, through Redis
    emails = list(
        Invitation.objects.filter(poll=poll).order_by("pk").values_list("email", flat=True)
    )
    in_flight = emails[9]
    released = smtp_sink.hold(in_flight)

    assert smtp_sink.holding.wait(timeout=60), first.stdout and "the worker never got there"
    first.kill()  # SIGKILL: no clean-up, no ack
    first.wait(timeout=30)
    released.set()  # the slow server finishes storing the message in flight
    states = dict(Invitation.objects.filter(poll=poll).values_list("state").annotate(n=Count("pk")))
    assert states.get(Invitation.State.SENDING, 0) >= 20, states  # held by the dead worker

    workers.start()  # the same name; no beat anywhere

    def all_sent():
        return Invitation.objects.filter(poll=poll, state=Invitation.State.SENT).count() == 30

    assert wait_until(all_sent, seconds=120), dict(
        Invitation.objects.filter(poll=poll).values_list("state").annotate(n=Count("pk"))
    )
    received = Counter(r for m in smtp_sink.messages for r in m.rcpt_tos)
    assert set(received) == set(emails)
    twice = [address for address, n in received.items() if n > 1]
    assert twice in ([], [in_flight]) and max(received.values()) <= 2
