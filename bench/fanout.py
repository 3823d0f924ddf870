"""Benchmark of poll fan-out: invitations through Redis and Celery workers to a local SMTP sink.

Run from the repository root (Redis must be running):

    python bench/fanout.py                    # 20,000 invitations, 2 workers
    python bench/fanout.py --small            # 1,000 invitations, 1 worker
    python bench/fanout.py --invitations 5000 --workers 4
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/fanout.py

It never touches the developer's database: with DATABASE_URL pointing at PostgreSQL it creates a
throwaway database (readiness_bench_<pid>) on that server and drops it at the end; otherwise it
uses a temporary SQLite file, which the workers open too (SQLite's locking may then limit the
throughput: the database used is reported). Redis comes from REDIS_URL (default
redis://127.0.0.1:6379/0); tasks go to a queue of the bench's own (bench-<pid>), so other workers
on that Redis take none of them. An SMTP sink (aiosmtpd) runs in this process on 127.0.0.1 and
counts what each recipient receives; this process and the workers mail to it.

Measured in one run:
  raw      one connection of mailers.default sending N/4 (at least 500) plain EmailMessages to
           the sink with send_messages(): `raw_send_per_s`, the baseline of `ratio`
  fan-out  compose.poll_send() of a poll to N agencies, until every invitation is sent, with
           --workers Celery workers (--pool=solo) started and answering beforehand:
           `invitations_per_s`, and `ratio` = invitations_per_s / raw_send_per_s

Every invitation must reach its recipient exactly once: `duplicates` (emails received beyond one
per recipient), `missing` (invitations whose recipient received nothing) and `failed`
(invitations marked failed) must all be 0, or the bench exits non-zero. The last line printed is
one JSON object with the figures. DEBUG defaults to false here (as in production), so neither
this process nor the workers keep a log of every query.
"""

import argparse
import collections
import datetime
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from import_registry import BenchDatabase  # noqa: E402 (the throwaway database, shared)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PROBLEM = re.compile(r"(WARNING|ERROR|CRITICAL)/|Traceback")
POLL_INTERVAL = 0.2  # seconds between looks at the invitations' states
AIM = 0.8  # invitations per second as a share of the raw send rate
RAW_BODY = (
    "Which of your teams could deploy, and how soon? This is a plain message of about the size "
    "of an invitation's text part, sent to measure what one SMTP connection can carry.\n"
) * 6


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="1,000 invitations and 1 worker")
    parser.add_argument(
        "--invitations", type=int, help="number of invitations (default 20,000; overrides --small)"
    )
    parser.add_argument(
        "--workers", type=int, help="worker processes, --pool=solo (default 2; 1 with --small)"
    )
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated agencies")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds to wait for delivery (default 900)"
    )
    args = parser.parse_args()
    if args.invitations is None:
        args.invitations = 1_000 if args.small else 20_000
    if args.workers is None:
        args.workers = 1 if args.small else 2
    if args.invitations < 1:
        parser.error("--invitations must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


# --- Redis -------------------------------------------------------------------------------------


def check_redis(url: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise SystemExit(
            f"fanout bench: Redis does not answer at {url} ({exc}). Start Redis, or set "
            "REDIS_URL to one that runs (default redis://127.0.0.1:6379/0)."
        ) from None


def forget_queue(url: str, queue: str) -> None:
    """Remove the bench queue's keys from Redis (kombu keeps its bindings after the queue)."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        client.close()
    except (redis.RedisError, OSError):
        pass


# --- the SMTP sink -----------------------------------------------------------------------------


class CountingHandler:
    """aiosmtpd handler: counts messages per recipient. The server runs in its own thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._total = 0
        self._first: float | None = None
        self._last: float | None = None

    async def handle_DATA(self, server, session, envelope):
        now = time.perf_counter()
        with self._lock:
            for address in envelope.rcpt_tos:
                self._counts[address.lower()] += 1
            self._total += 1
            if self._first is None:
                self._first = now
            self._last = now
        return "250 Message accepted for delivery"

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._total = 0
            self._first = self._last = None

    def snapshot(self) -> tuple[int, collections.Counter[str], float | None, float | None]:
        """Messages received, a copy of the counts per recipient, first and last arrival."""
        with self._lock:
            return self._total, collections.Counter(self._counts), self._first, self._last

    @property
    def total(self) -> int:
        with self._lock:
            return self._total


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink():
    from aiosmtpd.controller import Controller

    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()  # returns once the server answers
    return handler, controller, port


# --- workers -----------------------------------------------------------------------------------


class Workers:
    """Celery worker subprocesses on the bench queue, each logging to a file of its own."""

    def __init__(self, count: int, queue: str, log_dir: str):
        self.count = count
        self.queue = queue
        self.log_dir = log_dir
        self.names = [f"{queue}-{k}" for k in range(1, count + 1)]
        self.processes: list[subprocess.Popen] = []
        self._logs: list = []

    def start(self) -> None:
        env = dict(os.environ)  # DATABASE_URL or SQLITE_PATH, REDIS_URL, EMAIL_*, queue, DEBUG
        for name in self.names:
            log = open(os.path.join(self.log_dir, f"{name}.log"), "w")  # noqa: SIM115
            self._logs.append(log)
            command = [
                sys.executable, "-m", "celery", "-A", "readiness", "worker", "--pool=solo",
                "-Q", self.queue, "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip",
                "--without-mingle", "--loglevel=WARNING",
            ]  # fmt: skip
            self.processes.append(
                subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )

    def check_alive(self) -> None:
        for name, process in zip(self.names, self.processes, strict=True):
            if process.poll() is not None:
                raise SystemExit(
                    f"worker {name} exited with code {process.returncode}:\n{self.tail(name)}"
                )

    def wait_ready(self, app, *, seconds: float = 60) -> float:
        """A task round trip through the broker and a worker to the database, then a ping
        answered by every worker. Returns the seconds it took."""
        start = time.perf_counter()
        result = app.send_task("readiness.tasks.health_check", queue=self.queue)
        try:
            health = result.get(timeout=seconds)
        except Exception as exc:
            self.check_alive()
            raise SystemExit(f"no worker answered a health check in {seconds:.0f}s: {exc!r}\n"
                             f"{self.tail(self.names[0])}") from None  # fmt: skip
        if not health.get("database"):
            raise SystemExit(f"worker health check: {health}")
        deadline = time.monotonic() + seconds
        waiting = set(self.names)
        while waiting and time.monotonic() < deadline:
            self.check_alive()
            for reply in app.control.ping(timeout=1.0) or []:
                for node in reply:
                    waiting.discard(node.split("@", 1)[0])
        if waiting:
            raise SystemExit(f"workers did not answer a ping in {seconds:.0f}s: {sorted(waiting)}")
        return time.perf_counter() - start

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            text = Path(self.log_dir, f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()  # warm shutdown: a task being run finishes first
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for log in self._logs:
            log.close()

    def problems(self) -> dict[str, list[str]]:
        """Lines each worker logged at WARNING or above (the start-up banner left out)."""
        found = {}
        for name in self.names:
            try:
                text = Path(self.log_dir, f"{name}.log").read_text(errors="replace")
            except OSError:
                continue
            lines = [line for line in text.splitlines() if PROBLEM.search(line)]
            if lines:
                found[name] = lines
        return found


# --- data --------------------------------------------------------------------------------------


def create_agencies(n: int, rng: random.Random):
    """One region and n agencies with a primary contact each; returns (region, [(pk, code)])."""
    from agencies.models import Agency, Contact, Region

    region = Region.objects.create(name="Region 8 - Cook County")
    Agency.objects.bulk_create(
        [
            Agency(
                code=f"bench-agency-{i}",
                name=f"Bench Agency {i:05d} Police Department",
                kind=Agency.Kind.MUNICIPAL,
                region=region,
                city=f"Benchville {i}",
                latitude=round(rng.uniform(37.0, 42.5), 5),
                longitude=round(rng.uniform(-91.4, -87.6), 5),
                sworn_officers=80,
                min_home_staffing=40,
            )
            for i in range(n)
        ],
        batch_size=1000,
    )
    agencies = list(Agency.objects.order_by("code").values_list("pk", "code"))
    Contact.objects.bulk_create(
        [
            Contact(
                agency_id=pk,
                name=f"Chief {code.rsplit('-', 1)[1]}",
                title="Chief of Police",
                email=contact_email(code),
                role=Contact.Role.PRIMARY,
            )
            for pk, code in agencies
        ],
        batch_size=1000,
    )
    return region, agencies


def contact_email(code: str) -> str:
    return f"chief.{code}@bench.example"


def create_poll(region, **fields):
    """A bench coordinator's poll for Chicago, targeting the region (a draft unless told)."""
    from django.utils import timezone

    from readiness.models import User
    from surveys.models import Poll

    coordinator = User.objects.create_user(
        "coordinator@bench.example", full_name="Bench Coordinator", role=User.Role.COORDINATOR
    )
    poll = Poll.objects.create(
        title="Bench availability check",
        message="Which of your teams could deploy, and how soon?",
        destination_name="Chicago (City Hall)",
        destination_latitude=41.8837,
        destination_longitude=-87.6319,
        deadline=timezone.now() + datetime.timedelta(days=2),
        created_by=coordinator,
        **fields,
    )
    poll.target_regions.set([region])
    return poll


def create_data(n: int, seed: int):
    """One region, n agencies with one primary contact each, a coordinator, a draft poll."""
    from django.db import transaction

    with transaction.atomic():  # committed at the end: the workers see all of it
        region, _ = create_agencies(n, random.Random(seed))
        return create_poll(region)


# --- measuring ---------------------------------------------------------------------------------


def raw_send(n: int, sink: CountingHandler) -> tuple[float, int]:
    """Seconds to send n plain messages over one connection of mailers.default, and n."""
    from django.core.mail import EmailMessage, mailers

    messages = [
        EmailMessage(subject=f"Raw {i}", body=RAW_BODY, to=[f"raw-{i}@bench.example"])
        for i in range(n)
    ]
    connection = mailers.default
    start = time.perf_counter()
    sent = connection.send_messages(messages)  # opens, sends all, closes
    seconds = time.perf_counter() - start
    if sent != n or sink.total != n:
        raise SystemExit(f"raw send: {sent} sent, {sink.total} received, expected {n}")
    sink.reset()
    return seconds, n


def states(poll) -> dict[str, int]:
    from django.db.models import Count

    from surveys.models import Invitation

    rows = (
        Invitation.objects.filter(poll=poll).order_by().values_list("state").annotate(n=Count("pk"))
    )
    return {state: n for state, n in rows}


def run(args: argparse.Namespace, database: BenchDatabase, sink: CountingHandler) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from readiness.celery import app
    from surveys import compose, delivery
    from surveys.models import Invitation

    app.conf.task_always_eager = False  # through the broker, whatever the environment says
    queue = os.environ["CELERY_TASK_DEFAULT_QUEUE"]
    n = args.invitations

    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    poll = create_data(n, args.seed)
    print(
        f"database: {database.kind} ({connection.vendor}, {database.name}); migrated and "
        f"created {n:,} agencies with a primary contact in {time.perf_counter() - start:.1f}s"
    )

    raw_n = max(500, n // 4)
    raw_seconds, _ = raw_send(raw_n, sink)
    raw_per_s = raw_n / raw_seconds
    print(
        f"raw send_messages: {raw_n:,} plain messages over one connection in {raw_seconds:.2f}s, "
        f"{raw_per_s:,.0f}/s"
    )

    log_dir = tempfile.mkdtemp(prefix="readiness_bench_workers_")
    workers = Workers(args.workers, queue, log_dir)
    try:
        workers.start()
        ready_seconds = workers.wait_ready(app)
        print(
            f"{args.workers} worker(s) on queue {queue} (--pool=solo) answering after "
            f"{ready_seconds:.1f}s"
        )

        start = time.perf_counter()
        created = compose.poll_send(poll=poll)  # creates, commits, then queues the tasks
        send_seconds = time.perf_counter() - start
        if created != n:
            raise SystemExit(f"poll_send created {created} invitations, expected {n}")
        print(
            f"poll_send: {created:,} invitations created and "
            f"{-(-created // delivery.DELIVERY_CHUNK)} tasks queued in {send_seconds:.2f}s"
        )

        deadline = start + args.timeout
        next_report = start + (2 if args.small else 5)
        timed_out = False
        while True:
            counts = states(poll)
            done = counts.get(Invitation.State.SENT, 0) + counts.get(Invitation.State.FAILED, 0)
            now = time.perf_counter()
            if done >= n:
                break
            if now >= deadline:
                timed_out = True
                print(f"timed out after {args.timeout:.0f}s: {counts}")
                break
            if now >= next_report:
                elapsed = now - start
                sent = counts.get(Invitation.State.SENT, 0)
                print(
                    f"  {elapsed:6.1f}s  sent {sent:,}/{n:,} ({sent / elapsed:,.0f}/s)  "
                    f"queued {counts.get(Invitation.State.QUEUED, 0):,}  "
                    f"sending {counts.get(Invitation.State.SENDING, 0):,}  "
                    f"failed {counts.get(Invitation.State.FAILED, 0):,}  "
                    f"received {sink.total:,}"
                )
                next_report = now + (2 if args.small else 5)
            workers.check_alive()
            time.sleep(POLL_INTERVAL)
        seconds = time.perf_counter() - start
        time.sleep(1.0)  # a redelivered task would show up as a duplicate now
    finally:
        workers.stop()
        worker_problems = workers.problems()
        shutil.rmtree(log_dir, ignore_errors=True)

    received, per_recipient, first, last = sink.snapshot()
    counts = states(poll)
    sent = counts.get(Invitation.State.SENT, 0)
    failed = counts.get(Invitation.State.FAILED, 0)
    expected = set(Invitation.objects.filter(poll=poll).values_list("email", flat=True))
    expected = {e.lower() for e in expected}
    distinct = len(per_recipient)
    duplicates = received - distinct
    missing = n - len(expected & set(per_recipient))
    strangers = len(set(per_recipient) - expected)
    per_s = n / seconds
    ratio = per_s / raw_per_s

    print(f"fan-out: {n:,} invitations in {seconds:.2f}s, {per_s:,.0f}/s")
    if first is not None and last is not None:
        print(
            f"  first email {first - start:.2f}s after poll_send began, last {last - start:.2f}s; "
            f"sink {received / max(last - first, 1e-9):,.0f}/s between them"
        )
    print(
        f"  states {counts}; sink received {received:,} emails for {distinct:,} recipients: "
        f"{duplicates} duplicate(s), {missing} missing, {strangers} unexpected recipient(s)"
    )
    print(
        f"ratio: {ratio:.2f} of the raw send_messages rate "
        f"({'meets' if ratio >= AIM else 'below'} the {AIM} aim of issue 21)"
    )
    for name, lines in worker_problems.items():
        shown = "\n".join(f"  | {line}" for line in lines[:15])
        print(f"worker {name} logged {len(lines)} warning or error line(s):\n{shown}")

    return {
        "invitations": n,
        "invitations_per_s": round(per_s, 1),
        "raw_send_per_s": round(raw_per_s, 1),
        "ratio": round(ratio, 3),
        "duplicates": duplicates,
        "missing": missing,
        "failed": failed,
        "sent": sent,
        "received": received,
        "seconds": round(seconds, 3),
        "poll_send_seconds": round(send_seconds, 3),
        "raw_messages": raw_n,
        "raw_seconds": round(raw_seconds, 3),
        "workers": args.workers,
        "database": database.kind,
        "timed_out": timed_out,
    }


def main() -> None:
    args = parse_args()
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    check_redis(redis_url)
    queue = f"bench-{os.getpid()}"

    handler, controller, port = start_sink()
    database = BenchDatabase()
    try:
        database.create()
        # Before django.setup(): settings read these, and the workers inherit them.
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "readiness.settings",
                "REDIS_URL": redis_url,
                "CELERY_TASK_ALWAYS_EAGER": "false",
                "CELERY_TASK_DEFAULT_QUEUE": queue,
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(port),
            }
        )
        for name in ("EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL"):
            os.environ.pop(name, None)  # the sink speaks plain SMTP, without authentication
        os.environ.setdefault("DEBUG", "false")
        import django

        django.setup()
        # The settings log INFO to the console: aiosmtpd would then log every SMTP command.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        figures = run(args, database, handler)
    finally:
        controller.stop()
        database.drop()
        forget_queue(redis_url, queue)
    print(json.dumps(figures))
    if figures["duplicates"] or figures["missing"] or figures["failed"] or figures["timed_out"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
