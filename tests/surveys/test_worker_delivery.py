"""A real Celery worker on the real Redis broker delivers a poll to a real SMTP server.

Needs REDIS_URL and PostgreSQL (CI has both; with CI=true their absence fails the test).
"""

import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from django.db.models import Count

from readiness.celery import app as celery_app
from surveys import compose
from surveys.models import Invitation
from tests.test_services import ROOT, worker_env

from .factories import PollFactory
from .test_delivery import agencies_with_contacts


class Workers:
    """Real worker processes on a queue of their own, mailing through the test's SMTP sink;
    `start()` again under the same name is a restart."""

    def __init__(self, smtp_sink):
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.name = f"{self.queue}@localhost"
        self.env = {
            **worker_env(),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_sink.port),
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
        }
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "readiness", "worker", "--pool=solo",
             "-n", self.name, "-Q", self.queue, "--without-heartbeat", "--without-gossip",
             "--without-mingle", "--loglevel=WARNING"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.communicate(timeout=30)


@pytest.fixture
def workers(redis_url, postgres, smtp_sink):
    workers = Workers(smtp_sink)
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = workers.queue
    celery_app.conf.task_always_eager = False  # through the broker (conftest restores it)
    try:
        yield workers
    finally:
        celery_app.conf.task_default_queue = previous
        workers.stop()


@pytest.fixture
def worker(workers):
    """One worker on a queue of its own, mailing through the test's SMTP sink."""
    return workers.start()


def wait_until(condition, *, seconds: float = 60) -> bool:
    """Poll with a deadline (no fixed sleep): the worker runs in another process."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


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
    celery_app.send_task("surveys.tasks.deliver_invitations", args=[ids]).get(timeout=60)
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
