"""A real SMTP server on 127.0.0.1 for the delivery tests (PollFactory is in factories.py)."""

import asyncio
import email
import email.policy
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller
from django.db.models.query_utils import DeferredAttribute
from django.utils import timezone

from agencies.models import TeamMember
from readiness.celery import app as celery_app
from readiness.db import FetchRest
from surveys.models import Poll
from tests.test_services import ROOT, worker_env

from ..factories import SpecialTeamFactory, TeamTypeFactory
from .factories import PollFactory, open_invitation


@dataclass
class Received:
    rcpt_tos: list[str]
    message: email.message.EmailMessage


class SinkHandler:
    """Records what arrives; answers DATA or RCPT with an error code when told to."""

    def __init__(self):
        self._lock = threading.Lock()  # the server runs in its own thread
        self.messages: list[Received] = []
        self.rejected: list[Received] = []  # arrived in full, then answered with an error
        self._fail_count = 0
        self._fail_reply = ""
        self._refused: dict[str, str] = {}
        self._dropped: dict[str, str] = {}  # address -> "rcpt" or "data"
        self._failing: dict[str, list] = {}  # address -> [times left, reply]
        self._held: dict[str, threading.Event] = {}  # address -> released
        self.holding = threading.Event()  # set while a held message waits in DATA

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            refusal = self._refused.get(address.lower())
            drop = self._dropped.get(address.lower())
        if drop == "rcpt":
            server.transport.close()  # hang up without an answer
            return "421 closing"
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        received = Received(
            rcpt_tos=list(envelope.rcpt_tos),
            message=email.message_from_bytes(envelope.content, policy=email.policy.default),
        )
        address = envelope.rcpt_tos[0].lower() if envelope.rcpt_tos else ""
        with self._lock:
            released = self._held.get(address)
        if released is not None and not released.is_set():
            # A slow server: the message waits in DATA until the test releases it.
            self.holding.set()
            while not released.is_set():
                await asyncio.sleep(0.05)
        with self._lock:
            if self._dropped.get(address) == "data":
                # Stored, then the connection drops before the client hears "250".
                self.messages.append(received)
                server.transport.close()
                return "421 closing"
            failing = self._failing.get(address)
            if failing and failing[0]:
                failing[0] -= 1
                self.rejected.append(received)
                return failing[1]
            if self._fail_count:
                self._fail_count -= 1
                self.rejected.append(received)
                return self._fail_reply
            self.messages.append(received)
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, handler: SinkHandler, controller: Controller, port: int):
        self._handler = handler
        self._controller = controller
        self.port = port
        self.running = True

    @property
    def messages(self) -> list[Received]:
        return self._handler.messages

    @property
    def rejected(self) -> list[Received]:
        return self._handler.rejected

    def fail_next(self, n: int, code_text: str) -> None:
        """Answer the next n DATA commands with code_text, e.g. "451 4.3.0 try later"."""
        with self._handler._lock:
            self._handler._fail_count = n
            self._handler._fail_reply = code_text

    def refuse(self, address: str, code_text: str) -> None:
        """Always answer RCPT TO:<address> with code_text, e.g. "550 5.1.1 no such user"."""
        with self._handler._lock:
            self._handler._refused[address.lower()] = code_text

    def drop(self, address: str, at: str) -> None:
        """Always hang up on <address>: at "rcpt" (before the message), or after "data" (the
        message is stored, then the connection drops before the client hears it was)."""
        assert at in ("rcpt", "data")
        with self._handler._lock:
            self._handler._dropped[address.lower()] = at

    def fail_for(self, address: str, n: int, code_text: str) -> None:
        """Answer the next n messages to <address> with code_text, then accept."""
        with self._handler._lock:
            self._handler._failing[address.lower()] = [n, code_text]

    def hold(self, address: str) -> threading.Event:
        """Keep the message to <address> waiting in DATA until the returned event is set;
        `sink.holding` is set once it waits."""
        released = threading.Event()
        with self._handler._lock:
            self._handler._held[address.lower()] = released
        return released

    @property
    def holding(self) -> threading.Event:
        return self._handler.holding

    def to(self, address: str) -> list[Received]:
        return [r for r in self.messages if address in r.rcpt_tos]

    def stop(self) -> None:
        """Take the server down: its port then refuses connections."""
        if self.running:
            self._controller.stop()
            self.running = False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink(settings):
    port = free_port()
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()  # returns once the server answers
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5},
        }
    }
    sink = SmtpSink(handler, controller, port)
    yield sink
    sink.stop()


@pytest.fixture
def sms_provider(settings):
    """The fake SMS provider on 127.0.0.1, and the app's Twilio backend pointed at it."""
    from tests import fake_sms

    fake, server = fake_sms.start()
    settings.SMS_PROVIDER = "twilio"
    settings.SMS_API_URL = fake.url
    settings.SMS_ACCOUNT_SID = fake_sms.ACCOUNT
    settings.SMS_AUTH_TOKEN = fake_sms.TOKEN
    settings.SMS_FROM = fake_sms.FROM
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def imap_server():
    """Dovecot on 127.0.0.1 with TLS, once per run (tests/imap_server.py)."""
    import tempfile
    from pathlib import Path

    from tests import imap_server as dovecot
    from tests.conftest import require_service

    require_service("Dovecot (IMAP)", dovecot.available(), "apt-get install dovecot-imapd")
    root = Path(tempfile.mkdtemp(prefix="readiness-imap-"))
    root.chmod(0o755)  # the mailbox's owner (nobody) must reach it
    server = dovecot.start(root)
    yield server
    dovecot.stop(server)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def reply_mailbox(imap_server, settings):
    """The app's reply mailbox, empty, on the test IMAP server."""
    from tests import imap_server as dovecot

    imap_server.empty()
    settings.REPLY_MAILBOX = dovecot.USER
    settings.IMAP_HOST, settings.IMAP_PORT = "127.0.0.1", imap_server.port
    settings.IMAP_USER, settings.IMAP_PASSWORD = dovecot.USER, dovecot.PASSWORD
    settings.IMAP_CA_FILE = imap_server.ca_file
    return imap_server


# A commander's agency with a SWAT team of three active members (one without email), an
# inactive one and an MFF member; an open poll targeting SWAT (issue 19's tests).
@pytest.fixture
def world(commander):
    swat, mff = TeamTypeFactory(code="swat-m"), TeamTypeFactory(code="mff-m")
    srt = SpecialTeamFactory(agency=commander.agency, team_type=swat, name="SRT", members=3)
    other = SpecialTeamFactory(agency=commander.agency, team_type=mff, name="MFF", members=20)
    for name, address in (("Dana Ruiz", "dana@pd.example"), ("Sam Lee", "sam@pd.example"),
                        ("No Email", "")):  # fmt: skip
        TeamMember.objects.create(team=srt, agency=commander.agency, name=name, email=address)
    TeamMember.objects.create(team=srt, agency=commander.agency, name="Gone", active=False,
                              email="gone@pd.example")  # fmt: skip
    TeamMember.objects.create(team=other, agency=commander.agency, name="Mff Person",
                              email="mff@pd.example")  # fmt: skip
    poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now())
    poll.target_team_types.set([swat])
    invitation, _ = open_invitation(agency=commander.agency, poll=poll, travel_minutes=40)
    return poll, srt, invitation


# Real Celery workers (issue 13's delivery tests, issue 19's members end to end) ------------


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


@pytest.fixture
def deferred_loads(monkeypatch) -> list[str]:
    """The model names of the objects whose deferred fields a lean lookup's instances loaded
    (readiness.db.FETCH_REST), in order; related objects loaded lazily are not in it."""
    loads = []
    fetch = FetchRest.fetch

    def recorded(self, fetcher, instance):
        if isinstance(fetcher, DeferredAttribute):
            loads.append(type(instance).__name__)
        fetch(self, fetcher, instance)

    monkeypatch.setattr(FetchRest, "fetch", recorded)
    return loads
