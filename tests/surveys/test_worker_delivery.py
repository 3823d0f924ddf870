"""A real Celery worker on the real Redis broker delivers a poll to a real SMTP server.

Needs REDIS_URL and PostgreSQL (CI has both; with CI=true their absence fails the test).
"""

import subprocess
import sys
import time
import uuid

import pytest

from readiness.celery import app as celery_app
from surveys import services
from surveys.models import Invitation
from tests.test_services import ROOT, worker_env

from .factories import PollFactory
from .test_delivery import agencies_with_contacts


@pytest.fixture
def worker(redis_url, postgres, smtp_sink):
    """A worker on a queue of its own, mailing through the test's SMTP sink."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**worker_env(), "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_sink.port),
           "CELERY_TASK_DEFAULT_QUEUE": queue}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "readiness", "worker", "--pool=solo",
         "-Q", queue, "--without-heartbeat", "--without-gossip", "--without-mingle",
         "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    celery_app.conf.task_always_eager = False  # through the broker (conftest restores it)
    try:
        yield process
    finally:
        celery_app.conf.task_default_queue = previous
        process.terminate()
        process.communicate(timeout=30)


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
    assert services.poll_send(poll=poll) == 12  # commits, then queues through Redis

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
