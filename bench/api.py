"""Benchmark of the REST API (/api/v1/) with a coordinator's token, through gunicorn.

Run from the repository root:

    python bench/api.py                       # 20,000 agencies, a poll with 15,000 replies
    python bench/api.py --small               # 500 agencies, 375 replies, 1,000 team lines
    python bench/api.py --agencies 5000 --repeat 40
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/api.py

It never touches the developer's database: with DATABASE_URL pointing at PostgreSQL it creates a
throwaway database (readiness_bench_<pid>) on that server and drops it at the end; otherwise it
uses a temporary SQLite file, which the server opens too. The data is bench/dashboard.py's, made
by its create_data() from --seed: the agencies of 8 regions with their special teams, one open
poll sent 8 hours ago with a delivered invitation per agency, the replies (60% available, 20%
conditional, 20% unavailable) and their team lines. Then a copy of that poll with only its first
10 answering agencies (their invitations, replies and lines), to count the queries of the same
requests on few rows; and a coordinator's API token, issued by readiness.accounts.services as
`manage.py issue_api_token` does. On PostgreSQL the tables are vacuumed and analysed afterwards.

The server is bench/replies.py's: gunicorn, 2 gthread workers with 4 threads (--workers,
--threads), DEBUG false, development settings (no SSL redirect), DB_CONN_MAX_AGE 60, and Redis
for the cache (so for the API's throttle) when one answers (BENCH_REDIS_URL or REDIS_URL, default
redis://127.0.0.1:6379/0), as in production. The throttle's rate (API_THROTTLE_USER) is raised
here so that a long --repeat is never refused; the throttle still runs on every request.

Measured in one run, by one client sending its requests one after the other on one kept-alive
connection (`Authorization: Bearer <key>`), each kind after 2 untimed warm-ups, --repeat times:
  agencies   GET /api/v1/agencies/?page_size=500: a page of agencies with their teams nested:
             `agencies_p50_ms`, `agencies_p90_ms`
  replies    GET /api/v1/replies/?poll=<id>&page_size=500: a page of answers with their team
             lines: `replies_p50_ms`, `replies_p90_ms`
  baseline   (of both lists) the same rows through the ORM in this process, bare: the view's own
             queryset (its select_related and prefetch_related, scoped to the token's user,
             filtered as the request asks), counted and its first page fetched as model instances,
             as DRF's paginator does; no serialization, rendering, middleware or HTTP.
             `agencies_orm_p50_ms`, `replies_orm_p50_ms` (and their statements, `*_orm_queries`:
             the API's, less the token's look-up); `agencies_ratio` and `replies_ratio`
             are the API's p50 over the baseline's: what the API adds to fetching the rows.
  readiness  GET /api/v1/polls/<id>/readiness/, the dashboard's figures in full (the default
             window): `readiness_p50_ms`; and with If-None-Match: the ETag of the latest full
             answer, answered 304 without a body: `readiness_304_p50_ms`. `etag_ratio` is the
             full p50 over the 304 p50. An open poll's ETag changes when its reply-progress
             step turns (every 5 minutes early on): a 200 in the 304 phase brings the new tag
             and is not timed (`etag_refreshed` counts them).
  healthz    GET /healthz on the same server (SELECT 1, no authentication): the floor of any
             request, for scale (`healthz_p50_ms`; no ratio is taken against it)
  queries    SQL statements one request of each kind executes, in this process through Django's
             test client with the token (django.test.utils.CaptureQueriesContext): on the whole
             data (`*_queries`) and on few rows (`*_queries_few`: the agencies with ?page_size=10,
             the replies and the readiness of the 10-agency copy). A count that differs between the
             two grows with the data (an N+1): such endpoints are listed in `queries_grow` and
             printed as a warning.

The responses are checked: every status as expected; each list's count, and the teams and lines
nested in its page, against the database; the readiness figures (?within=all) against the
generated data, as bench/dashboard.py checks its summary; the 304s without a body. A mismatch or
an unexpected status is an error, and the bench exits non-zero. A table of the figures comes
first; the last line printed is one JSON object with them.
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from dashboard import (  # noqa: E402 (shared helpers: the poll's data, its checks, the figures)
    SHARES,
    WARMUPS,
    analyse_tables,
    check_summary,
    create_data,
    percentile,
    spread,
)
from fanout import forget_queue  # noqa: E402
from import_registry import TEAM_KINDS, BenchDatabase  # noqa: E402 (the throwaway database)
from replies import (  # noqa: E402 (the gunicorn server and its client connection)
    HOST,
    NOT_FOR_THE_SERVER,
    Connection,
    Server,
    machine_busy,
    reachable_redis,
)

FEW = 10  # agencies of the poll's copy, and the agencies page that counts queries on few rows
THROTTLE = "1000000/minute"  # API_THROTTLE_USER of the bench: no request refused


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--small", action="store_true", help="500 agencies, 375 replies, 1,000 lines, 10 repeats"
    )
    parser.add_argument("--agencies", type=int, help="agencies asked (default 20,000; 500 small)")
    parser.add_argument("--replies", type=int, help="replies (default 3/4 of the agencies)")
    parser.add_argument("--lines", type=int, help="team lines (default 2 per agency asked)")
    parser.add_argument("--page-size", type=int, default=500, help="lists' page_size (500)")
    parser.add_argument("--repeat", type=int, help="timed requests of each kind (30; 10 small)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker, gthread (1: sync workers)"
    )
    parser.add_argument(
        "--conn-max-age", type=int, default=60, help="DB_CONN_MAX_AGE of the server (default 60)"
    )
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated data")
    parser.add_argument("--keep-log", action="store_true", help="keep the server's log file")
    args = parser.parse_args()
    if args.agencies is None:
        args.agencies = 500 if args.small else 20_000
    if args.replies is None:
        args.replies = args.agencies * 3 // 4
    if args.lines is None:
        args.lines = args.agencies * 2
    if args.repeat is None:
        args.repeat = 10 if args.small else 30
    if args.agencies < 2 * FEW:
        parser.error(f"--agencies must be at least {2 * FEW}")
    if not 2 * FEW <= args.replies <= args.agencies:
        parser.error(f"--replies must be from {2 * FEW} to the number of agencies")
    said_yes = args.replies - round(args.replies * SHARES["unavailable"])
    if not said_yes <= args.lines <= said_yes * len(TEAM_KINDS):
        parser.error(
            f"--lines must be from {said_yes:,} to {said_yes * len(TEAM_KINDS):,}: at least one "
            f"and at most {len(TEAM_KINDS)} teams for each of the {said_yes:,} agencies saying yes"
        )
    if not 1 <= args.page_size <= 500:
        parser.error("--page-size must be from 1 to 500 (the API's most)")
    for name in ("repeat", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


# --- data --------------------------------------------------------------------------------------


def copy_poll(poll, n: int):
    """A copy of the poll with only its first n agencies that answered with team lines: their
    invitations, replies and lines. The same requests on it show the queries of few rows."""
    from django.db import transaction

    from surveys.models import Invitation, Poll, Reply, ReplyLine

    with transaction.atomic():
        agencies = list(
            Reply.objects.filter(poll=poll, lines__isnull=False)
            .order_by("agency_id")
            .values_list("agency_id", flat=True)
            .distinct()[:n]
        )
        copy = Poll.objects.get(pk=poll.pk)
        copy.pk, copy._state.adding = None, True
        copy.title = f"{poll.title} ({n} agencies)"
        copy.save()
        copy.target_regions.set(poll.target_regions.all())
        copy.target_team_types.set(poll.target_team_types.all())

        invitations = list(Invitation.objects.filter(poll=poll, agency_id__in=agencies))
        for invitation in invitations:
            invitation.pk, invitation.poll = None, copy
        Invitation.objects.bulk_create(invitations)
        invitation_of = dict(Invitation.objects.filter(poll=copy).values_list("agency_id", "pk"))

        replies = list(Reply.objects.filter(poll=poll, agency_id__in=agencies))
        agency_of = {reply.pk: reply.agency_id for reply in replies}
        lines = list(ReplyLine.objects.filter(reply_id__in=agency_of))
        for reply in replies:
            reply.pk, reply.poll = None, copy
            reply.updated_via_id = invitation_of[reply.agency_id]
        Reply.objects.bulk_create(replies)
        reply_of = dict(Reply.objects.filter(poll=copy).values_list("agency_id", "pk"))
        for line in lines:
            line.pk, line.poll, line.reply_id = None, copy, reply_of[agency_of[line.reply_id]]
        ReplyLine.objects.bulk_create(lines)
    return copy


def issue_token(coordinator) -> tuple[object, str]:
    """A coordinator's API token, as `manage.py issue_api_token` issues one: (token, key)."""
    from django.test import RequestFactory

    from readiness.accounts import services
    from readiness.models import User

    request = RequestFactory().post("/api-tokens/")
    request.user = coordinator
    return services.api_token_issue(request=request, name="bench", role=User.Role.COORDINATOR)


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Timed:
    """One kind of request: its timings (ms), last body, and statements on all and few rows."""

    times: list[float]
    body: bytes = b""
    queries: int = 0
    queries_few: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.times) if self.times else 0.0

    @property
    def p90(self) -> float:
        return percentile(self.times, 0.9) if self.times else 0.0

    @property
    def kb(self) -> float:
        return len(self.body) / 1000


def fetch(connection: Connection, path: str, headers: dict, errors: list[str], expect=200):
    """One GET through the server: (response or None, body, milliseconds)."""
    try:
        response, data, seconds = connection.request("GET", path, headers=headers)
    except (OSError, http.client.HTTPException) as exc:
        errors.append(f"GET {path}: {type(exc).__name__}")
        return None, b"", 0.0
    if expect is not None and response.status != expect:
        errors.append(f"GET {path}: {response.status}, expected {expect}")
    return response, data, seconds * 1000


def time_server(connection, path: str, headers: dict, repeat: int, errors: list[str]) -> Timed:
    """`repeat` sequential GETs after WARMUPS untimed ones."""
    for _ in range(WARMUPS):
        fetch(connection, path, headers, errors)
    timed = Timed([])
    for _ in range(repeat):
        response, timed.body, ms = fetch(connection, path, headers, errors)
        if response is not None:
            timed.times.append(ms)
    return timed


def time_not_modified(connection, path: str, headers: dict, etag: str, repeat: int, errors):
    """`repeat` GETs with If-None-Match after WARMUPS untimed ones; a 200 with a new ETag (the
    reply-progress step turned) takes that tag and is not timed. Returns (Timed, tags refreshed)."""
    timed, refreshed, warm = Timed([]), 0, WARMUPS
    for _ in range(3 * (repeat + WARMUPS)):
        if len(timed.times) == repeat:
            break
        response, data, ms = fetch(
            connection, path, {**headers, "If-None-Match": etag}, errors, expect=None
        )
        if response is None:
            continue
        fresh = response.getheader("ETag", "")
        if response.status == 200 and fresh and fresh != etag:
            etag, refreshed = fresh, refreshed + 1
        elif response.status != 304 or data:
            errors.append(f"GET {path} with If-None-Match: {response.status}, {len(data)} bytes")
        elif warm:
            warm -= 1
        else:
            timed.times.append(ms)
    if len(timed.times) < repeat:
        errors.append(f"GET {path}: only {len(timed.times)} of {repeat} answers were 304")
    return timed, refreshed


def page_querysets(user, poll) -> dict:
    """The two lists' querysets as their views build them for this user and filter."""
    from agencies.api import AgencyViewSet
    from surveys.api import ReplyViewSet

    request = SimpleNamespace(user=user)  # get_queryset() reads the user only
    return {
        "agencies": AgencyViewSet(request=request).get_queryset(),
        "replies": ReplyViewSet(request=request).get_queryset().filter(poll_id=poll.pk),
    }


def fetch_page(queryset, page_size: int) -> tuple[int, list]:
    """What DRF's paginator fetches: the count, then the first page (prefetches included)."""
    return queryset.count(), list(queryset[:page_size])


def time_orm(queryset, page_size: int, repeat: int) -> list[float]:
    for _ in range(WARMUPS):
        fetch_page(queryset, page_size)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fetch_page(queryset, page_size)
        times.append((time.perf_counter() - start) * 1000)
    return times


def count_queries(client, path: str, errors: list[str], expect=200, **extra) -> tuple[int, object]:
    """Statements one request executes, in this process through the test client."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **extra)
    if response.status_code != expect:
        errors.append(f"in-process GET {path}: {response.status_code}, expected {expect}")
    return len(captured.captured_queries), response


def check_agencies(data: dict, page_size: int, errors: list[str]) -> tuple[int, int]:
    """The page's count, agencies and nested teams against the database: (agencies, teams)."""
    from agencies.models import Agency, SpecialTeam

    results = data["results"]
    total = Agency.objects.count()
    if data["count"] != total or len(results) != min(page_size, total):
        errors.append(
            f"agencies: count {data['count']}, {len(results)} in the page, {total} stored"
        )
    teams = sum(len(agency["teams"]) for agency in results)
    stored = SpecialTeam.objects.filter(agency_id__in=[a["id"] for a in results]).count()
    if teams != stored:
        errors.append(f"agencies: {teams} teams nested in the page, {stored} stored")
    return len(results), teams


def check_replies(data: dict, poll, page_size: int, errors: list[str]) -> tuple[int, int]:
    """The page's count, replies and nested lines against the database: (replies, lines)."""
    from surveys.models import Reply, ReplyLine

    results = data["results"]
    total = Reply.objects.filter(poll=poll).count()
    if data["count"] != total or len(results) != min(page_size, total):
        errors.append(f"replies: count {data['count']}, {len(results)} in the page, {total} stored")
    if any(reply["poll"] != poll.pk for reply in results):
        errors.append("replies: another poll's answer in the page")
    lines = sum(len(reply["lines"]) for reply in results)
    stored = ReplyLine.objects.filter(reply_id__in=[r["id"] for r in results]).count()
    if lines != stored:
        errors.append(f"replies: {lines} lines nested in the page, {stored} stored")
    return len(results), lines


def ms(value: float) -> str:
    return f"{value:8.1f}"


def run(args: argparse.Namespace, database: BenchDatabase) -> dict:
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    busy = machine_busy()
    if busy > 0.25:
        print(f"note: {busy:.0%} of the CPUs were busy before the run: the figures may be high")

    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter() - start
    poll, expected = create_data(args)
    few_poll = copy_poll(poll, FEW)
    token, key = issue_token(poll.created_by)
    analyse_tables()
    print(
        f"database: {database.kind} ({connection.vendor} {connection.Database.__name__}, "
        f"{database.name}); migrated in {migrated:.1f}s, then created {expected.asked:,} "
        f"agencies, {expected.teams:,} teams, a poll with {expected.asked:,} invitations, "
        f"{expected.replied:,} replies and {expected.lines:,} team lines, its {FEW}-agency "
        f"copy and a coordinator's token in {time.perf_counter() - start - migrated:.1f}s"
    )

    errors: list[str] = []
    size = args.page_size
    urls = {
        "agencies": f"/api/v1/agencies/?page_size={size}",
        "replies": f"/api/v1/replies/?poll={poll.pk}&page_size={size}",
        "readiness": f"/api/v1/polls/{poll.pk}/readiness/",
    }
    few_urls = {
        "agencies": f"/api/v1/agencies/?page_size={FEW}",
        "replies": f"/api/v1/replies/?poll={few_poll.pk}&page_size={size}",
        "readiness": f"/api/v1/polls/{few_poll.pk}/readiness/",
    }

    # The baseline first, in this process, while the server is not running yet.
    querysets = page_querysets(token.user, poll)
    orm = {name: time_orm(qs, size, args.repeat) for name, qs in querysets.items()}
    orm_rows = {name: len(fetch_page(qs, size)[1]) for name, qs in querysets.items()}
    connections.close_all()  # the server has the database to itself during the timings

    log_dir = tempfile.mkdtemp(prefix="readiness_bench_server_")
    redis_url = reachable_redis()
    server = Server(args, log_dir, redis_url)
    kind = f"gthread, {args.threads} threads each" if args.threads > 1 else "sync"
    auth = {"Authorization": f"Bearer {key}"}
    timed: dict[str, Timed] = {}
    try:
        server.start()
        ready = server.wait_ready()
        print(
            f"gunicorn: {args.workers} worker(s) ({kind}) on {HOST}:{server.port}, answering "
            f"after {ready:.1f}s; DB_CONN_MAX_AGE={args.conn_max_age}; cache: "
            f"{'Redis' if redis_url else 'local memory'}; one client, sequential requests"
        )
        client = Connection(server.port)
        try:
            _, body, _ = fetch(client, f"{urls['readiness']}?within=all", auth, errors)
            if body:
                check_summary(json.loads(body), expected, errors)
            timed["healthz"] = time_server(client, "/healthz", {}, args.repeat, errors)
            for name in ("agencies", "replies", "readiness"):
                timed[name] = time_server(client, urls[name], auth, args.repeat, errors)
            response, _, _ = fetch(client, urls["readiness"], auth, errors)
            etag = response.getheader("ETag", "") if response is not None else ""
            if not etag:
                errors.append(f"GET {urls['readiness']}: no ETag")
            timed["readiness_304"], refreshed = time_not_modified(
                client, urls["readiness"], auth, etag, args.repeat, errors
            )
        finally:
            client.close()
        server.check_alive()
    finally:
        server.stop()
        problems = server.problems()
        if args.keep_log:
            print(f"server log kept: {server.log_path}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
        if redis_url:
            forget_queue(redis_url, server.queue)  # no task is queued by reads; tidy anyway

    pages = {}
    for name in ("agencies", "replies"):
        body = timed[name].body
        pages[name] = json.loads(body) if body else {"count": None, "results": []}
    n_agencies, n_teams = check_agencies(pages["agencies"], size, errors)
    n_replies, n_lines = check_replies(pages["replies"], poll, size, errors)
    for name, rows in (("agencies", n_agencies), ("replies", n_replies)):
        if orm_rows[name] != rows:
            errors.append(f"{name}: the ORM's page has {orm_rows[name]} rows, the API's {rows}")

    # Statements per request, in this process: each kind on all rows and on few, after an
    # untimed request (the token's last_used_at is written then, if a minute has passed).
    in_process = Client(HTTP_HOST=HOST, headers=auth)
    grow = []
    for name in ("agencies", "replies", "readiness"):
        in_process.get("/api/v1/me/")
        timed[name].queries, _ = count_queries(in_process, urls[name], errors)
        timed[name].queries_few, _ = count_queries(in_process, few_urls[name], errors)
    for which, target in (("queries", urls["readiness"]), ("queries_few", few_urls["readiness"])):
        for attempt in range(2):  # the ETag of an open poll changes when a progress step turns
            tag = in_process.get(target).headers.get("ETag", "")
            count, response = count_queries(
                in_process, target, [], expect=304, HTTP_IF_NONE_MATCH=tag
            )
            if response.status_code == 304 or attempt:
                break
        if response.status_code != 304:
            errors.append(f"in-process GET {target} with If-None-Match: {response.status_code}")
        setattr(timed["readiness_304"], which, count)
    timed["healthz"].queries, _ = count_queries(in_process, "/healthz", errors)
    timed["healthz"].queries_few = timed["healthz"].queries
    orm_queries = {}
    for name, queryset in querysets.items():
        with CaptureQueriesContext(connection) as captured:
            fetch_page(queryset, size)
        orm_queries[name] = len(captured.captured_queries)
    for name, t in timed.items():
        if t.queries != t.queries_few:
            grow.append(name)

    # The table, then the ratios.
    orm_p50 = {name: statistics.median(times) for name, times in orm.items()}
    ratio = {name: timed[name].p50 / orm_p50[name] if orm_p50[name] else 0.0 for name in orm_p50}
    full, not_modified = timed["readiness"], timed["readiness_304"]
    etag_ratio = full.p50 / not_modified.p50 if not_modified.p50 else 0.0
    rows = [
        ("agencies", urls["agencies"], f"{n_agencies:,} agencies, {n_teams:,} teams",
         f"ORM {orm_p50['agencies']:.1f} ms", f"{ratio['agencies']:.1f}x"),
        ("replies", urls["replies"], f"{n_replies:,} replies, {n_lines:,} lines",
         f"ORM {orm_p50['replies']:.1f} ms", f"{ratio['replies']:.1f}x"),
        ("readiness", urls["readiness"], "full figures", f"304 {not_modified.p50:.1f} ms",
         f"{etag_ratio:.1f}x"),
        ("readiness_304", f"{urls['readiness']} If-None-Match", "304, no body", "", ""),
        ("healthz", "/healthz", "SELECT 1", "", ""),
    ]  # fmt: skip
    width = max(len(path) for _, path, *_ in rows)
    print(f"{args.repeat} timed requests of each kind, after {WARMUPS} warm-ups; queries on all "
          f"rows / on few (agencies ?page_size={FEW}, replies and readiness of the {FEW}-agency "
          f"copy):")  # fmt: skip
    header = (
        f"  {'GET':{width}}  {'rows':28} {'kB':>7} {'queries':>9}  {'p50 ms':>8} {'p90 ms':>8}"
        f"  {'baseline':16} {'ratio':>6}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for name, path, what, baseline, times in rows:
        t = timed[name]
        queries = f"{t.queries}/{t.queries_few}" if name != "healthz" else str(t.queries)
        print(
            f"  {path:{width}}  {what:28} {t.kb:7.1f} {queries:>9}  {ms(t.p50)} {ms(t.p90)}"
            f"  {baseline:16} {times:>6}"
        )
    print(
        f"ratio: agencies {ratio['agencies']:.1f}x and replies {ratio['replies']:.1f}x the p50 "
        f"of the same rows through the ORM in-process (bare: no serialization, no HTTP); "
        f"readiness in full {etag_ratio:.1f}x the 304 with If-None-Match"
        f"{f' ({refreshed} ETag(s) refreshed as the minute turned)' if refreshed else ''}"
    )
    print(
        f"ORM baseline: agencies {spread(orm['agencies'])} ({orm_queries['agencies']} queries); "
        f"replies {spread(orm['replies'])} ({orm_queries['replies']} queries)"
    )
    if grow:
        print(
            "warning: statements per request differ between all rows and few rows for "
            + ", ".join(f"{n} ({timed[n].queries} vs {timed[n].queries_few})" for n in grow)
        )
    else:
        print("queries per request: the same on all rows as on few, for every endpoint")
    if problems:
        shown = "\n".join(f"  | {n:5} x {line}" for line, n in problems.most_common(10))
        print(f"gunicorn logged {problems.total()} error line(s):\n{shown}")
    for error in errors[:20]:
        print(f"error: {error}")

    figures = {}
    for name in ("agencies", "replies"):
        t = timed[name]
        figures.update(
            {
                f"{name}_p50_ms": round(t.p50, 2),
                f"{name}_p90_ms": round(t.p90, 2),
                f"{name}_orm_p50_ms": round(orm_p50[name], 2),
                f"{name}_orm_p90_ms": round(percentile(orm[name], 0.9), 2),
                f"{name}_orm_queries": orm_queries[name],
                f"{name}_ratio": round(ratio[name], 2),
                f"{name}_kb": round(t.kb, 1),
                f"{name}_queries": t.queries,
                f"{name}_queries_few": t.queries_few,
            }
        )
    figures.update(
        {
            "readiness_p50_ms": round(full.p50, 2),
            "readiness_p90_ms": round(full.p90, 2),
            "readiness_304_p50_ms": round(not_modified.p50, 2),
            "readiness_304_p90_ms": round(not_modified.p90, 2),
            "etag_ratio": round(etag_ratio, 2),
            "etag_refreshed": refreshed,
            "readiness_kb": round(full.kb, 1),
            "readiness_queries": full.queries,
            "readiness_queries_few": full.queries_few,
            "readiness_304_queries": not_modified.queries,
            "readiness_304_queries_few": not_modified.queries_few,
            "healthz_p50_ms": round(timed["healthz"].p50, 2),
            "healthz_p90_ms": round(timed["healthz"].p90, 2),
            "queries_grow": grow,
            "errors": len(errors),
            "agencies": expected.asked,
            "teams": expected.teams,
            "replies": expected.replied,
            "lines": expected.lines,
            "page_agencies": n_agencies,
            "page_teams": n_teams,
            "page_replies": n_replies,
            "page_lines": n_lines,
            "page_size": size,
            "repeat": args.repeat,
            "backend": connection.vendor,
            "database": database.kind,
            "cache": "redis" if redis_url else "locmem",
            "server_workers": args.workers,
            "server_threads": args.threads,
            "server_log_errors": problems.total(),
            "busy_before": round(busy, 2),
        }
    )
    return figures


def main() -> None:
    args = parse_args()
    database = BenchDatabase()
    try:
        database.create()
        # Before django.setup(): development settings (no SSL redirect), DEBUG off, a host the
        # settings allow, no Redis in this process (the server gets it: reachable_redis()), and
        # a throttle rate no run reaches, for this process and the server alike.
        os.environ.setdefault("BENCH_REDIS_URL", os.environ.get("REDIS_URL", ""))
        for name in NOT_FOR_THE_SERVER:
            os.environ.pop(name, None)
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "readiness.settings",
                "DEBUG": "false",
                "ALLOWED_HOSTS": HOST,
                "API_THROTTLE_USER": THROTTLE,
            }
        )
        import django

        django.setup()
        figures = run(args, database)
    finally:
        database.drop()
    print(json.dumps(figures))
    if figures["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
