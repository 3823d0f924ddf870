"""Benchmark of reply submissions: commanders answering a poll through the reply form, served by
gunicorn on 127.0.0.1 under concurrent load, against the same server's trivial view.

Run from the repository root:

    python bench/replies.py                   # 2,000 agencies, 8 clients
    python bench/replies.py --small           # 200 agencies, a shorter trivial phase
    python bench/replies.py --agencies 5000 --clients 16 --threads 8
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/replies.py

It never touches the developer's database: with DATABASE_URL pointing at PostgreSQL it creates a
throwaway database (readiness_bench_<pid>) on that server and drops it at the end; otherwise it
uses a temporary SQLite file, which the server opens too. This process migrates it and creates
the agencies (one primary contact, one or two special teams each), one open poll and a delivered
invitation per agency whose reply token only this process knows (the database keeps the hash).

The server is gunicorn with DEBUG false, development settings (no SSL redirect) and, as in
production, Redis when one answers (REDIS_URL, default redis://127.0.0.1:6379/0): each saved
version is written with its confirmation email due, and queues a run of the task that sends them
(one message while a run is queued, however many answers commit) on a queue of the bench's own
that no worker reads; the bench counts the confirmations due (`confirmations_due`, which must
equal the versions stored) and the runs queued (`confirmation_runs_queued`), and deletes the
queue. Without Redis, or with --eager, Celery runs the confirmations in the request on the
console mailer, as the embedded default does (`confirmations_due` is then 0; the server's
stdout goes to /dev/null, its stderr to a log file scanned for errors afterwards).
DB_CONN_MAX_AGE is 60 as in production (--conn-max-age).
Workers: 2 gthread workers (one per core of the 2-core machine this was written on) with 4
threads each, so that the 8 clients' connections stay open and one thread's wait on the database
overlaps another's Python. Replies are CPU-bound either way: sync workers (--threads 1; the
Dockerfile runs 3) served them within 10% of that, but close the connection after every response,
so the trivial baseline then measures TCP set-up as much as the view. --keep-log keeps the
server's log and prints where it is.

The load: --clients threads (default 8) in this process, each with its own persistent
http.client connection; their CPU share is reported, since on 2 cores the client competes with
the server. Measured in one run, each phase starting when every client is ready:
  forms    each agency's reply form, GET once (keeps its CSRF cookie and token): `form_rps`
  trivial  GET /healthz (SELECT 1, JSON) for --seconds in all: `trivial_rps`, the baseline of
           `ratio`; in ten slices, each followed by a tenth of the replies (run_with_trivial: on
           a shared host the machine's speed moves from second to second, and both then see
           the same machine, on average)
  replies  each agency's first answer, POSTed with version 0, expecting a 302 to its done page:
           `reply_rps`, `ratio` = reply_rps / trivial_rps, `p50_ms` and `p99_ms` of the POSTs
  updates  each answered agency changes its answer (version 1): `update_rps` (--no-updates skips)
The gunicorn workers' CPU time per request in each phase is reported too (`*_cpu_ms`; what the
database server spends on PostgreSQL is not in it).

Afterwards the stored versions are compared with what was acknowledged, per agency: `lost`
(acknowledged with a 302 but no ReplyVersion stored), `duplicates` (versions stored beyond the
acknowledged ones, e.g. from a request the client gave up on) and `mismatched` (the stored reply's
officers differ from the last acknowledged answer). Any response other than the expected one is
an error. The bench exits non-zero when errors, lost, duplicates or mismatched are not 0. The last
line printed is one JSON object with the figures.
"""

import argparse
import collections
import http.client
import http.cookies
import json
import math
import os
import queue
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fanout import (  # noqa: E402 (helpers shared by the benches)
    contact_email,
    create_agencies,
    create_poll,
    forget_queue,
    free_port,
)
from import_registry import BenchDatabase  # noqa: E402 (the throwaway database, shared)

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 60  # seconds; a request that takes longer counts as an error
# In gunicorn's log: its own errors, and the exception line that ends a traceback.
PROBLEM = re.compile(r"\[(ERROR|CRITICAL)\]|^[A-Za-z_][\w.]*(Error|Exception)\b")
CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
VERSION_INPUT = re.compile(rb'name="version" value="(\d+)"')
FORM = "application/x-www-form-urlencoded"
AIM = 0.2  # replies against the trivial view's throughput (issue 21)
# Server settings the environment might carry but this bench must not use (see the docstring).
NOT_FOR_THE_SERVER = (
    "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "CELERY_TASK_DEFAULT_QUEUE", "EMAIL_HOST",
    "DJANGO_ENV", "SECURE_SSL_REDIRECT", "BEHIND_TLS_PROXY", "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_SECURE", "ALLOWED_HOSTS",
)  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="200 agencies, 3s of trivial load")
    parser.add_argument(
        "--agencies", type=int, help="agencies that answer (default 2,000; overrides --small)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="send confirmations in the request (embedded default) even when Redis answers",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker, gthread (1: sync workers)"
    )
    parser.add_argument(
        "--seconds", type=float, help="length of the trivial phase (default 10; 3 with --small)"
    )
    parser.add_argument(
        "--no-updates", action="store_true", help="skip the second answer (version 1)"
    )
    parser.add_argument(
        "--conn-max-age", type=int, default=60, help="DB_CONN_MAX_AGE of the server (default 60)"
    )
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated agencies")
    parser.add_argument("--keep-log", action="store_true", help="keep the server's log file")
    args = parser.parse_args()
    if args.agencies is None:
        args.agencies = 200 if args.small else 2_000
    if args.seconds is None:
        args.seconds = 3.0 if args.small else 10.0
    for name in ("agencies", "clients", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


# --- data --------------------------------------------------------------------------------------


@dataclass
class Target:
    """One agency's invitation as the client sees it: the secret link and what it will answer."""

    agency_id: int
    token: str
    teams: list[tuple[int, int]]  # (team pk, members), the answered team first
    officers: tuple[int, int]  # first answer, changed answer
    travel: int
    cookie: str = ""
    csrf: str = ""
    acked: set[int] = field(default_factory=set)  # version numbers acknowledged with a 302

    @property
    def path(self) -> str:
        return f"/r/{self.token}/"

    def body(self, version: int) -> bytes:
        """The form as a browser posts it: every field, the unanswered ones empty."""
        officers = self.officers[1 if version else 0]
        data = {
            "csrfmiddlewaretoken": self.csrf,
            "version": version,
            "decision": "available",
            "authorised_by_name": "Dana Reyes",
            "authorised_by_rank": "Chief" if version == 0 else "Deputy Chief",
            "conditions_text": "",
            "decline_reason": "",
            "note": "",
        }
        for k, (pk, _) in enumerate(self.teams):
            answered = k == 0
            data.update(
                {
                    f"team-{pk}-officers": officers if answered else "",
                    f"team-{pk}-vehicles": 2 if answered else "",
                    f"team-{pk}-depart_minutes": 30 if answered else "",
                    f"team-{pk}-travel_minutes": self.travel,
                    f"team-{pk}-deploy_hours": 12 if answered else "",
                }
            )
        return urlencode(data).encode()


def create_data(n: int, seed: int) -> tuple[object, list[Target]]:
    """n agencies with a primary contact and one or two teams, an open poll targeting SWAT
    teams, and a delivered invitation per agency with a fresh token."""
    from django.db import transaction
    from django.utils import timezone

    from agencies.models import Contact, SpecialTeam, TeamType
    from surveys.models import Invitation, Poll

    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic():  # committed before the server starts
        region, agencies = create_agencies(n, rng)
        swat = TeamType.objects.get(code="swat")  # seeded by a migration
        mff = TeamType.objects.get(code="mff")
        teams = []
        for pk, code in agencies:  # an SRT each (what the poll targets), an MFF for half
            kinds = [("srt", swat, 8, 30)] + ([("mff", mff, 20, 60)] if rng.random() < 0.5 else [])
            teams += [
                SpecialTeam(code=f"{code}-{name}", name=name.upper(), agency_id=pk,
                            team_type=team_type, level=2, members=rng.randint(low, high))
                for name, team_type, low, high in kinds
            ]  # fmt: skip
        SpecialTeam.objects.bulk_create(teams, batch_size=1000)
        poll = create_poll(region, state=Poll.State.OPEN, sent_at=now)
        poll.target_team_types.set([swat])

        contacts = dict(Contact.objects.values_list("agency_id", "pk"))
        by_agency = collections.defaultdict(list)
        for pk, agency_id, type_id, members in SpecialTeam.objects.order_by("pk").values_list(
            "pk", "agency_id", "team_type_id", "members"
        ):
            by_agency[agency_id].append((type_id != swat.pk, pk, members))  # SRT first
        targets, invitations = [], []
        for agency_id, code in agencies:
            token = secrets.token_urlsafe(32)
            travel = rng.randint(20, 240)
            team_list = [(pk, members) for _, pk, members in sorted(by_agency[agency_id])]
            members = team_list[0][1]
            first = rng.randint(1, members)
            changed = rng.choice([k for k in range(1, members + 1) if k != first])
            targets.append(Target(agency_id, token, team_list, (first, changed), travel))
            invitations.append(
                Invitation(
                    poll=poll,
                    agency_id=agency_id,
                    contact_id=contacts[agency_id],
                    email=contact_email(code),
                    token_hash=Invitation.hash_token(token),
                    distance_km=round(travel * 1.2, 1),
                    travel_minutes=travel,
                    state=Invitation.State.SENT,
                    sent_at=now,
                    attempts=1,
                )
            )
        Invitation.objects.bulk_create(invitations, batch_size=1000)
    return poll, targets


# --- the server --------------------------------------------------------------------------------


class Server:
    """gunicorn serving the app from a subprocess; stdout (the console mailer) to /dev/null,
    stderr (gunicorn's and Django's logs) to a file."""

    def __init__(self, args: argparse.Namespace, log_dir: str, redis_url: str | None):
        self.args = args
        self.redis_url = redis_url
        self.queue = f"bench-replies-{os.getpid()}"
        self.port = free_port()
        self.log_path = os.path.join(log_dir, "gunicorn.log")
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        env = dict(os.environ)  # DATABASE_URL or SQLITE_PATH from BenchDatabase
        for name in NOT_FOR_THE_SERVER:
            env.pop(name, None)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "readiness.settings",
                "DEBUG": "false",
                "SECRET_KEY": "bench-" + secrets.token_urlsafe(32),
                "ALLOWED_HOSTS": HOST,
                "DB_CONN_MAX_AGE": str(self.args.conn_max_age),
            }
        )
        if self.redis_url:
            # As in production: confirmations' runs are queued (to a queue of the bench's own,
            # which no worker reads; counted and deleted afterwards), and the cache is Redis,
            # without an earlier run's "a run is queued" (surveys.jobs.soon).
            env.update(REDIS_URL=self.redis_url, CELERY_TASK_DEFAULT_QUEUE=self.queue)
            forget_queued_runs(self.redis_url)
        worker_class = "gthread" if self.args.threads > 1 else "sync"
        command = [
            sys.executable, "-m", "gunicorn", "readiness.wsgi",
            "--bind", f"{HOST}:{self.port}", "--workers", str(self.args.workers),
            "--worker-class", worker_class, "--threads", str(self.args.threads),
            "--keep-alive", "30", "--timeout", str(REQUEST_TIMEOUT), "--log-level", "warning",
        ]  # fmt: skip
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self._log
        )

    def wait_ready(self, seconds: float = 60) -> float:
        """Poll /healthz until it answers 200; returns the seconds it took."""
        start = time.perf_counter()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    return time.perf_counter() - start
            except OSError:
                pass  # not listening yet
            finally:
                conn.close()
            time.sleep(0.1)
        raise SystemExit(f"gunicorn did not answer /healthz in {seconds:.0f}s:\n{self.tail()}")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise SystemExit(f"gunicorn exited with code {self.process.returncode}:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """User and system CPU time of gunicorn's master and workers so far."""
        if self.process is None:
            return 0.0
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            pid, ppid = int(entry.name), int(fields[1])
            if pid == self.process.pid or ppid == self.process.pid:
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def tail(self, lines: int = 30) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])

    def problems(self) -> collections.Counter:
        """Errors gunicorn logged and the exceptions in logged tracebacks, counted."""
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return collections.Counter()
        lines = (line.strip() for line in text.splitlines() if PROBLEM.search(line))
        return collections.Counter(re.sub(r"^\[[^]]*\] \[\d+\] ", "", line)[:200] for line in lines)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # graceful: requests being served finish first
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()


# --- the clients -------------------------------------------------------------------------------


class Connection:
    """One client's persistent HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        """(response, body, seconds). Raises OSError or HTTPException: never retried, since a
        POST the server may have seen must not be sent twice."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        seconds = time.perf_counter() - start
        if response.will_close:  # sync workers close after every response
            self.close()
        return response, data, seconds

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Phase:
    name: str
    ok: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter = field(default_factory=collections.Counter)
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def cpu_ms(self) -> float:
        """gunicorn's CPU time per request answered, good or not."""
        answered = self.ok + sum(self.errors.values())
        return 1000 * self.server_cpu / answered if answered else 0.0

    def report(self) -> str:
        errors = sum(self.errors.values())
        text = (
            f"{self.name}: {self.ok:,} in {self.seconds:.2f}s, {self.rps:,.1f}/s; "
            f"p50 {self.percentile_ms(0.5):.1f} ms, p99 {self.percentile_ms(0.99):.1f} ms; "
            f"server CPU {self.cpu_ms:.2f} ms/request; client CPU "
            f"{self.client_cpu / self.seconds if self.seconds else 0:.0%} of a core"
        )
        if errors:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in self.errors.most_common(6))
            text += f"\n  {errors} error(s): {kinds}"
        return text


def run_phase(name: str, clients: int, port: int, server: Server, work) -> Phase:
    """Run work(connection, record) in `clients` threads that start together; each calls
    record(seconds) for a good response and record(None, kind) for an error."""
    phase = Phase(name)
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    failures: list[BaseException] = []

    def record(seconds: float | None, kind: str = "") -> None:
        with lock:
            if seconds is None:
                phase.errors[kind] += 1
            else:
                phase.ok += 1
                phase.latencies.append(seconds)

    def client() -> None:
        connection = Connection(port)
        try:
            barrier.wait()
            work(connection, record)
        except BaseException as exc:  # a bug in the bench: report it, do not hang
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=client, name=f"{name}-{k}", daemon=True) for k in range(clients)
    ]
    for thread in threads:
        thread.start()
    cpu, server_cpu = time.process_time(), server.cpu_seconds()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - start
    phase.client_cpu = time.process_time() - cpu
    phase.server_cpu = server.cpu_seconds() - server_cpu
    if failures:
        raise failures[0]
    server.check_alive()
    return phase


def merge(total: Phase, part: Phase) -> None:
    total.ok += part.ok
    total.seconds += part.seconds
    total.latencies += part.latencies
    total.errors += part.errors
    total.client_cpu += part.client_cpu
    total.server_cpu += part.server_cpu


SLICES = 10


def run_with_trivial(name: str, clients: int, port: int, server: Server, items: list, make_work,
                     seconds: float, slices: int = SLICES) -> tuple[Phase, Phase]:  # fmt: skip
    """The trivial view for `seconds` and make_work(items) in turns: `slices` slices of the
    trivial view, each followed by a slice of the items. On a shared host the machine's speed
    moves by up to 2x from one second to the next (the same loop took 227 to 448 ms here):
    a ratio of two phases run one after the other measures that as much as the code. In turns,
    both see the same machine, on average. Returns (trivial, measured)."""
    trivial, measured = Phase("trivial"), Phase(name)
    size = math.ceil(len(items) / slices) if items else 0
    for k in range(slices):
        merge(trivial, run_phase("trivial", clients, port, server, trivial_work(seconds / slices)))
        part = items[k * size : (k + 1) * size]
        if part:
            merge(measured, run_phase(name, clients, port, server, make_work(part)))
    return trivial, measured


def error_kind(exc: BaseException) -> str:
    return type(exc).__name__


def trivial_work(seconds: float):
    def work(connection: Connection, record) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            try:
                response, data, took = connection.request("GET", "/healthz")
            except (OSError, http.client.HTTPException) as exc:
                record(None, error_kind(exc))
                continue
            if response.status == 200 and b'"ok"' in data:
                record(took)
            else:
                record(None, f"healthz {response.status}")

    return work


def queue_of(targets: list[Target]) -> queue.SimpleQueue:
    q = queue.SimpleQueue()
    for target in targets:
        q.put(target)
    return q


def form_work(targets: list[Target]):
    """GET each agency's form once; keep its CSRF cookie and token for the POSTs."""
    todo = queue_of(targets)

    def work(connection: Connection, record) -> None:
        while True:
            try:
                target = todo.get_nowait()
            except queue.Empty:
                return
            try:
                response, data, took = connection.request("GET", target.path)
            except (OSError, http.client.HTTPException) as exc:
                record(None, error_kind(exc))
                continue
            if response.status != 200:
                record(None, f"form {response.status}")
                continue
            cookie = http.cookies.SimpleCookie()
            for header in response.msg.get_all("Set-Cookie") or []:
                cookie.load(header)
            csrf = CSRF_INPUT.search(data)
            version = VERSION_INPUT.search(data)
            teams_shown = all(
                f'name="team-{pk}-officers"'.encode() in data for pk, _ in target.teams
            )
            if "csrftoken" not in cookie or not csrf:
                record(None, "form without CSRF cookie or token")
            elif not version or version[1] != b"0" or not teams_shown:
                record(None, "form without version 0 or the agency's teams")
            else:
                target.cookie = cookie["csrftoken"].value
                target.csrf = csrf[1].decode()
                record(took)

    return work


def submit_work(targets: list[Target], version: int):
    """POST each agency's answer built on `version`; a 302 to its done page acknowledges it."""
    todo = queue_of(targets)

    def work(connection: Connection, record) -> None:
        while True:
            try:
                target = todo.get_nowait()
            except queue.Empty:
                return
            headers = {"Content-Type": FORM, "Cookie": f"csrftoken={target.cookie}"}
            try:
                response, _, took = connection.request(
                    "POST", target.path, target.body(version), headers
                )
            except (OSError, http.client.HTTPException) as exc:
                record(None, error_kind(exc))
                continue
            location = response.getheader("Location", "")
            if response.status == 302 and location == f"{target.path}done/":
                target.acked.add(version + 1)
                record(took)
            else:
                record(None, f"POST {response.status}")

    return work


# --- checking what was stored ------------------------------------------------------------------


def check_stored(poll, targets: list[Target]) -> dict[str, int]:
    """Per agency: acknowledged versions against the ReplyVersion rows and the Reply stored."""
    from surveys.models import Reply, ReplyVersion

    stored = collections.defaultdict(set)
    for agency_id, number in ReplyVersion.objects.filter(poll=poll).values_list(
        "reply__agency_id", "number"
    ):
        stored[agency_id].add(number)
    replies = {
        agency_id: (version, officers)
        for agency_id, version, officers in Reply.objects.filter(poll=poll).values_list(
            "agency_id", "version", "officers"
        )
    }
    lost = duplicates = mismatched = 0
    for target in targets:
        have = stored.get(target.agency_id, set())
        lost += len(target.acked - have)
        duplicates += len(have - target.acked)
        if target.acked:
            last = max(target.acked)
            expected = (last, target.officers[last - 1])
            if replies.get(target.agency_id) != expected:
                mismatched += 1
    return {
        "lost": lost,
        "duplicates": duplicates,
        "mismatched": mismatched,
        "stored_replies": len(replies),
        "stored_versions": sum(len(v) for v in stored.values()),
    }


def machine_busy(seconds: float = 0.5) -> float:
    """The share of all CPUs busy over `seconds` (from /proc/stat): others' load skews us."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total, idle = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1 - (idle2 - idle) / max(total2 - total, 1)


# --- the run -----------------------------------------------------------------------------------


def reachable_redis() -> str | None:
    """REDIS_URL (or the local default) if a Redis answers there, else None."""
    import redis

    url = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError:
        return None
    return url


def forget_queued_runs(url: str) -> None:
    """Clear the cache's marks of queued runs (surveys.jobs.soon) left by an earlier process."""
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match="*jobs:queued:*"):
        client.delete(key)
    client.close()


def drain_queue(url: str, name: str) -> int:
    """How many tasks the server queued on the bench's queue; then delete it."""
    import redis

    client = redis.Redis.from_url(url)
    count = client.llen(name)
    client.close()
    forget_queue(url, name)
    return count


def run(args: argparse.Namespace, database: BenchDatabase) -> dict:
    from django.core.management import call_command
    from django.db import connection, connections

    from surveys.models import ReplyVersion

    n = args.agencies
    busy = machine_busy()
    if busy > 0.25:
        print(f"note: {busy:.0%} of the CPUs were busy before the run: the figures may be low")

    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    poll, targets = create_data(n, args.seed)
    database.settle()
    teams = sum(len(t.teams) for t in targets)
    print(
        f"database: {database.kind} ({connection.vendor}, {database.name}); migrated and "
        f"created {n:,} agencies, {teams:,} teams, an open poll and {n:,} invitations in "
        f"{time.perf_counter() - start:.1f}s"
    )
    connections.close_all()  # the server has the database to itself during the load

    log_dir = tempfile.mkdtemp(prefix="readiness_bench_server_")
    redis_url = None if args.eager else reachable_redis()
    server = Server(args, log_dir, redis_url)
    print(
        f"confirmation emails: queued to Redis ({redis_url})"
        if redis_url
        else "confirmation emails: sent in the request (eager Celery, console mailer)"
    )
    kind = f"gthread, {args.threads} threads each" if args.threads > 1 else "sync"
    try:
        server.start()
        ready = server.wait_ready()
        print(
            f"gunicorn: {args.workers} worker(s) ({kind}) on {HOST}:{server.port}, answering "
            f"after {ready:.1f}s; DB_CONN_MAX_AGE={args.conn_max_age}; {args.clients} clients"
        )
        port, clients = server.port, args.clients
        run_phase("warm-up", clients, port, server, trivial_work(min(1.0, args.seconds)))
        forms = run_phase("forms", clients, port, server, form_work(targets))
        print(forms.report())
        ready_targets = [t for t in targets if t.csrf]
        trivial, replies = run_with_trivial(
            "replies", clients, port, server, ready_targets,
            lambda part: submit_work(part, 0), args.seconds,
        )  # fmt: skip
        print(trivial.report())
        print(replies.report())
        updates = None
        if not args.no_updates:
            answered = [t for t in targets if 1 in t.acked]
            updates = run_phase("updates", clients, port, server, submit_work(answered, 1))
            print(updates.report())
    finally:
        server.stop()
        problems = server.problems()
        if args.keep_log:
            print(f"server log kept: {server.log_path}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)

    queued = drain_queue(redis_url, server.queue) if redis_url else None
    stored = check_stored(poll, targets)
    due = ReplyVersion.objects.filter(poll=poll, confirmation="due").count()
    phases = [trivial, forms, replies] + ([updates] if updates else [])
    errors = sum(sum(p.errors.values()) for p in phases)
    ratio = replies.rps / trivial.rps if trivial.rps else 0.0
    print(
        f"stored: {stored['stored_replies']:,} replies, {stored['stored_versions']:,} versions; "
        f"{stored['lost']} lost, {stored['duplicates']} duplicate(s), "
        f"{stored['mismatched']} mismatched; {errors} error(s)"
    )
    print(
        f"ratio: replies at {ratio:.2f} of the trivial view's throughput "
        f"({'meets' if ratio >= AIM else 'below'} the {AIM} aim); server CPU per reply "
        f"{replies.cpu_ms / trivial.cpu_ms if trivial.cpu_ms else 0:.1f}x the trivial view's"
    )
    if problems:
        shown = "\n".join(f"  | {n:5} x {line}" for line, n in problems.most_common(10))
        print(f"gunicorn logged {problems.total()} error line(s):\n{shown}")

    figures = {
        "reply_rps": round(replies.rps, 1),
        "trivial_rps": round(trivial.rps, 1),
        "ratio": round(ratio, 3),
        "p50_ms": round(replies.percentile_ms(0.5), 2),
        "p99_ms": round(replies.percentile_ms(0.99), 2),
        "lost": stored["lost"],
        "duplicates": stored["duplicates"],
        "mismatched": stored["mismatched"],
        "errors": errors,
        "error_kinds": dict(sum((p.errors for p in phases), collections.Counter())),
        "replies": replies.ok,
        "updates": updates.ok if updates else 0,
        "update_rps": round(updates.rps, 1) if updates else None,
        "update_p50_ms": round(updates.percentile_ms(0.5), 2) if updates else None,
        "update_p99_ms": round(updates.percentile_ms(0.99), 2) if updates else None,
        "form_rps": round(forms.rps, 1),
        "form_p50_ms": round(forms.percentile_ms(0.5), 2),
        "trivial_requests": trivial.ok,
        "trivial_p50_ms": round(trivial.percentile_ms(0.5), 2),
        "trivial_p99_ms": round(trivial.percentile_ms(0.99), 2),
        "reply_cpu_ms": round(replies.cpu_ms, 2),
        "trivial_cpu_ms": round(trivial.cpu_ms, 2),
        "client_cpu_share": round(replies.client_cpu / replies.seconds, 3)
        if replies.seconds
        else None,
        "stored_versions": stored["stored_versions"],
        "agencies": n,
        "concurrency": args.clients,
        "database": database.kind,
        "confirmations": "queued" if redis_url else "eager",
        "confirmations_due": due,
        "confirmation_runs_queued": queued,
        "server_workers": args.workers,
        "server_threads": args.threads,
        "conn_max_age": args.conn_max_age,
        "server_log_errors": problems.total(),
        "busy_before": round(busy, 2),
    }
    return figures


def main() -> None:
    args = parse_args()
    database = BenchDatabase()
    try:
        database.create()
        # Before django.setup(): this process only migrates, creates the data and checks it.
        os.environ["DJANGO_SETTINGS_MODULE"] = "readiness.settings"
        os.environ.setdefault("BENCH_REDIS_URL", os.environ.get("REDIS_URL", ""))
        for name in ("REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "EMAIL_HOST", "DJANGO_ENV"):
            os.environ.pop(name, None)
        os.environ.setdefault("DEBUG", "false")
        import django

        django.setup()
        figures = run(args, database)
    finally:
        database.drop()
    print(json.dumps(figures))
    unconfirmed = figures["confirmations"] == "queued" and (
        figures["confirmations_due"] != figures["stored_versions"]
        or not figures["confirmation_runs_queued"]
    )
    if unconfirmed:
        print("confirmations due differ from the versions stored", file=sys.stderr)
    if (
        figures["errors"]
        or figures["lost"]
        or figures["duplicates"]
        or figures["mismatched"]
        or unconfirmed
    ):
        sys.exit(1)


if __name__ == "__main__":
    main()
