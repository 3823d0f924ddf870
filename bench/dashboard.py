"""Benchmark of a poll's dashboard: the page and its summary JSON, against their bare SQL.

Run from the repository root:

    python bench/dashboard.py                 # 20,000 asked, 15,000 replies, 40,000 team lines
    python bench/dashboard.py --small         # 500 asked, 375 replies, 1,000 team lines
    python bench/dashboard.py --explain 3     # also EXPLAIN (ANALYZE) the 3 slowest statements
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/dashboard.py

It never touches the developer's database: with DATABASE_URL pointing at PostgreSQL it creates a
throwaway database (readiness_bench_<pid>) on that server and drops it at the end; otherwise it
uses a temporary SQLite file. The data, generated from --seed: the agencies (8 regions, a primary
contact and one to eight special teams each), one open poll sent 8 hours ago with a need
(officers of SWAT teams within 4 hours of the call, so the page's window defaults to 240
minutes) and requirements, a delivered invitation per agency, and the replies: 60% available,
20% with conditions, 20% unavailable (with a reason and no team lines), first answers spread
over the hours after sending, some changed later; the team lines go to the agencies that said
yes, on their own teams, arriving from minutes to about 11 hours after the call. Each reply's
totals (officers, earliest arrival, travel flag) agree with its lines, as the reply form keeps
them. No ReplyVersion rows: the dashboard does not read them. On PostgreSQL the tables are
vacuumed and analysed afterwards, as autovacuum would soon do.

Measured in one run, in this process through Django's test client (the whole middleware stack,
a coordinator signed in with two-factor set up; no network, no gunicorn), each after 2 warm-ups:
  page      GET /polls/<id>/dashboard/, --repeat times: `page_p50_ms` (p90, max too)
  summary   GET /polls/<id>/dashboard/summary.json: `summary_p50_ms`; and with the cache emptied
            before each, what every change costs: `summary_cold_p50_ms`; the page that way
            (the first watcher after a change): `page_cold_p50_ms`, and against the bare SQL
            of such a request (`page_sql_p50_ms`): `page_cold_sql_ratio`
  any time  the page with ?within=all, the other shape of every windowed query: `page_all_p50_ms`
  refresh   the page's live refresh (htmx, with the stamp it was rendered with) when nothing
            changed, which must answer 204: `refresh_204_p50_ms`, `refresh_204_queries`
  bare SQL  the statements ONE summary request executed (captured with their parameters through
            connection.execute_wrapper, session and user look-ups included), re-run as they were
            through a cursor and all rows fetched, --repeat times: `sql_p50_ms`; `ratio` is
            page_p50_ms / sql_p50_ms. The page's own statements the same way, as first
            requested (the summary computed): `page_sql_p50_ms`; and as timed (the summary
            cached): `page_warm_sql_p50_ms`, with `page_sql_ratio` = page_p50_ms / that (aim: 2)
  queries   statements one page request executes (`queries`), and one summary (`summary_queries`)
Then the page's statements one by one (median of the re-runs), the slowest first, with --explain
N the plans of the N slowest. The aims: the page under 150 ms on a 2-core machine, a refresh
that finds nothing new under 10 ms.

The figures the summary returns are checked against the generated data (asked, answered, each
decision, officers and qualified officers of each kind, the arrival curve's total): a mismatch,
or any response but 200, is an error, and the bench exits non-zero. The last line printed is one
JSON object with the figures. DEBUG is false here (as in production).
"""

import argparse
import datetime
import json
import math
import os
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fanout import contact_email, create_agencies, create_poll  # noqa: E402 (shared helpers)
from import_registry import REGIONS, TEAM_KINDS, BenchDatabase  # noqa: E402
from replies import NOT_FOR_THE_SERVER, machine_busy  # noqa: E402

STAMP = re.compile(r'data-stamp="([0-9a-f]+)"')
HOST = "127.0.0.1"  # in the development settings' ALLOWED_HOSTS
AIM_MS = 150  # the page's p50
REFRESH_AIM_MS = 10  # a live refresh that finds nothing new
SQL_RATIO_AIM = 2  # the page p50 against the bare SQL of the statements it runs
WARMUPS = 2
SENT_HOURS_AGO = 8
NEED_HOURS = 4  # needed_by after sending: the page's default window
SHARES = {"unavailable": 0.2, "conditional": 0.2}  # the rest: available
CONDITION_SETS = [
    ["emergencies_only"],
    ["emergencies_only", "own_authority"],
    ["officer_duress"],
    ["requirements"],
    ["other"],
]
DECLINES = [
    "Staffing for a local festival this weekend.",
    "Team deployed on another mutual-aid request.",
    "Training cycle: not enough qualified officers on duty.",
    "Council has not approved out-of-area deployments.",
]
DEPARTS = [0, 15, 20, 30, 45, 60, 90, 120, 180, 240]  # minutes before the team leaves
REQUIREMENTS = ["Current firearms qualification", "Mobile field force training within 2 years"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--small", action="store_true", help="500 asked, 375 replies, 1,000 lines, 5 repeats"
    )
    parser.add_argument("--agencies", type=int, help="agencies asked (default 20,000; 500 small)")
    parser.add_argument("--replies", type=int, help="replies (default 3/4 of the agencies)")
    parser.add_argument("--lines", type=int, help="team lines (default 2 per agency asked)")
    parser.add_argument("--repeat", type=int, help="timed requests of each kind (15; 5 small)")
    parser.add_argument(
        "--top", type=int, default=5, help="slowest statements to print (default 5)"
    )
    parser.add_argument(
        "--explain", type=int, default=0, metavar="N", help="print the plans of the N slowest"
    )
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated data")
    args = parser.parse_args()
    if args.agencies is None:
        args.agencies = 500 if args.small else 20_000
    if args.replies is None:
        args.replies = args.agencies * 3 // 4
    if args.lines is None:
        args.lines = args.agencies * 2
    if args.repeat is None:
        args.repeat = 5 if args.small else 15
    if args.agencies < 10:
        parser.error("--agencies must be at least 10")
    if not 5 <= args.replies <= args.agencies:
        parser.error("--replies must be from 5 to the number of agencies")
    said_yes = args.replies - round(args.replies * SHARES["unavailable"])
    if not said_yes <= args.lines <= said_yes * len(TEAM_KINDS):
        parser.error(
            f"--lines must be from {said_yes:,} to {said_yes * len(TEAM_KINDS):,}: at least one "
            f"and at most {len(TEAM_KINDS)} teams for each of the {said_yes:,} agencies saying yes"
        )
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


# --- data --------------------------------------------------------------------------------------


@dataclass
class Expected:
    """What the summary must report for the whole poll (?within=all)."""

    asked: int = 0
    replied: int = 0
    available: int = 0
    conditional: int = 0
    unavailable: int = 0
    officers_available: int = 0
    officers_conditional: int = 0
    qualified_available: int = 0
    qualified_conditional: int = 0
    teams: int = 0
    lines: int = 0


def spread_regions(region, agencies: list[tuple[int, str]]) -> list:
    """The agencies of create_agencies() (all in one region) dealt round-robin over 8 regions."""
    from agencies.models import Agency, Region

    regions = [region] + [Region.objects.create(name=n) for n in REGIONS if n != region.name]
    ids = [pk for pk, _ in agencies]
    for k, target in enumerate(regions[1:], start=1):
        Agency.objects.filter(pk__in=ids[k :: len(regions)]).update(region=target)
    return regions


def plan_lines(rng: random.Random, said_yes: int, lines: int) -> list[int]:
    """How many team lines each agency that said yes gives: `lines` over `said_yes`, shuffled."""
    base, extra = divmod(lines, said_yes)
    counts = [base + 1] * extra + [base] * (said_yes - extra)
    rng.shuffle(counts)
    return counts


def create_teams(rng, agencies, line_counts: dict[int, int]) -> dict[int, list[tuple]]:
    """Teams for every agency: enough for its lines (and one more for some), else one to three.
    Returns {agency pk: [(team pk, team type code, members)]}, in the order they were made."""
    from agencies.models import SpecialTeam, TeamType

    types = TeamType.objects.in_bulk(field_name="code")
    teams, planned = [], {}
    for pk, code in agencies:
        wanted = line_counts.get(pk, 0)
        count = wanted + int(rng.random() < 0.25) if wanted else rng.randint(1, 3)
        kinds = rng.sample(sorted(TEAM_KINDS), k=min(count, len(TEAM_KINDS)))
        planned[pk] = [f"{code}-{kind}" for kind in kinds]
        for kind in kinds:
            levels, (low, high), suffix = TEAM_KINDS[kind]
            teams.append(
                SpecialTeam(
                    code=f"{code}-{kind}", name=f"Bench {code.rsplit('-', 1)[1]} {suffix}",
                    agency_id=pk, team_type=types[kind], level=rng.choice(levels),
                    members=rng.randint(low, high),
                )
            )  # fmt: skip
    SpecialTeam.objects.bulk_create(teams, batch_size=2000)
    made = {
        code: (team_pk, type_code, members)
        for code, team_pk, type_code, members in SpecialTeam.objects.values_list(
            "code", "pk", "team_type__code", "members"
        )
    }
    return {pk: [made[code] for code in codes] for pk, codes in planned.items()}


def create_data(args: argparse.Namespace) -> tuple[object, Expected]:
    """The agencies, their teams, the open poll, its invitations, replies and team lines."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from agencies.models import Agency, Contact, SpecialTeam, TeamType
    from surveys import geo
    from surveys.models import Invitation, Poll, Reply, ReplyLine

    rng = random.Random(args.seed)
    n, n_replies = args.agencies, args.replies
    expected = Expected(asked=n, replied=n_replies)
    now = timezone.now()
    sent_at = now - datetime.timedelta(hours=SENT_HOURS_AGO)
    with transaction.atomic():
        region, agencies = create_agencies(n, rng)
        regions = spread_regions(region, agencies)

        # Who answers what, and how many team lines each yes brings.
        answering = rng.sample(agencies, k=n_replies)
        n_unavailable = round(n_replies * SHARES["unavailable"])
        n_conditional = round(n_replies * SHARES["conditional"])
        decisions = (
            [Reply.Decision.UNAVAILABLE] * n_unavailable
            + [Reply.Decision.CONDITIONAL] * n_conditional
            + [Reply.Decision.AVAILABLE] * (n_replies - n_unavailable - n_conditional)
        )
        rng.shuffle(decisions)
        decision_of = {pk: d for (pk, _), d in zip(answering, decisions, strict=True)}
        yes = [pk for pk, _ in answering if decision_of[pk] != Reply.Decision.UNAVAILABLE]
        line_counts = dict(zip(yes, plan_lines(rng, len(yes), args.lines), strict=True))
        teams = create_teams(rng, agencies, line_counts)
        expected.teams = sum(len(t) for t in teams.values())

        types = TeamType.objects.in_bulk(field_name="code")
        poll = create_poll(
            region,
            state=Poll.State.OPEN,
            sent_at=sent_at,
            officers_needed=max(50, args.lines // 8),
            needed_team_type=types["swat"],
            needed_by=sent_at + datetime.timedelta(hours=NEED_HOURS),
            requirements=REQUIREMENTS,
        )
        poll.target_regions.set(regions)
        poll.target_team_types.set([types["swat"], types["mff"], types["patrol"]])

        # When each answer came: most in the first hours, a tail until a little before now.
        latest = (SENT_HOURS_AGO * 60) - 15
        created = {
            pk: sent_at + datetime.timedelta(minutes=min(rng.expovariate(1 / 75), latest))
            for pk, _ in answering
        }
        contacts = dict(Contact.objects.values_list("agency_id", "pk"))
        coordinates = {pk: (lat, lon) for pk, lat, lon in Agency.objects.values_list(
            "pk", "latitude", "longitude")}  # fmt: skip
        estimate = {}
        invitations = []
        for pk, code in agencies:
            lat, lon = coordinates[pk]
            distance = geo.distance_km(
                lat, lon, poll.destination_latitude, poll.destination_longitude
            )
            estimate[pk] = geo.travel_minutes(distance)
            silent = pk not in decision_of
            reminded = silent and rng.random() < 0.5
            invitations.append(
                Invitation(
                    poll=poll, agency_id=pk, contact_id=contacts[pk], email=contact_email(code),
                    distance_km=round(distance, 1), travel_minutes=estimate[pk],
                    state=Invitation.State.SENT, sent_at=sent_at, attempts=1,
                    replied_at=None if silent else created[pk],
                    reminders_sent=1 if reminded else 0,
                    last_reminded_at=sent_at + datetime.timedelta(hours=6) if reminded else None,
                )
            )  # fmt: skip
        Invitation.objects.bulk_create(invitations, batch_size=2000)
        invitation_of = dict(Invitation.objects.filter(poll=poll).values_list("agency_id", "pk"))

        # The team lines of each yes, and the reply totals they make.
        ratio, least = settings.REPLY_TRAVEL_FLAG_RATIO, settings.REPLY_TRAVEL_FLAG_MIN_MINUTES
        lines_of: dict[int, list[ReplyLine]] = {}
        for pk in yes:
            lines = []
            for k, (team_pk, _, members) in enumerate(teams[pk][: line_counts[pk]]):
                if k and rng.random() < 0.03:  # a team named but not sent
                    lines.append(
                        ReplyLine(poll=poll, team_id=team_pk, officers=0,
                                  estimated_travel_minutes=estimate[pk])
                    )  # fmt: skip
                    continue
                officers = max(1, round(members * rng.uniform(0.3, 0.8)))
                depart = rng.choice(DEPARTS)
                travel = max(5, round(estimate[pk] * rng.uniform(0.4, 1.3)))
                flagged = travel < estimate[pk] * ratio and estimate[pk] - travel >= least
                lines.append(
                    ReplyLine(
                        poll=poll, team_id=team_pk, officers=officers,
                        vehicles=max(1, officers // 4), depart_minutes=depart,
                        travel_minutes=travel, arrival_minutes=depart + travel,
                        deploy_hours=rng.choice([8, 12, 24, 48]),
                        officers_qualified=round(officers * rng.uniform(0.5, 1)),
                        estimated_travel_minutes=estimate[pk], travel_flagged=flagged,
                    )
                )  # fmt: skip
            lines_of[pk] = lines

        replies = []
        for pk, code in answering:
            decision = decision_of[pk]
            answering_lines = [line for line in lines_of.get(pk, []) if line.officers]
            changed = rng.random() < 0.15
            updated = created[pk] + datetime.timedelta(
                minutes=rng.randint(10, 90) if changed else 0
            )
            conditions = (
                rng.choice(CONDITION_SETS) if decision == Reply.Decision.CONDITIONAL else []
            )
            replies.append(
                Reply(
                    poll=poll, agency_id=pk, decision=decision, conditions=conditions,
                    conditions_text="Only with our own command staff on scene."
                    if "other" in conditions else "",
                    decline_reason=rng.choice(DECLINES)
                    if decision == Reply.Decision.UNAVAILABLE else "",
                    authorised_by_name=f"Chief {code.rsplit('-', 1)[1]}",
                    authorised_by_rank="Chief of Police",
                    officers=sum(line.officers for line in answering_lines),
                    earliest_arrival_minutes=min(
                        (line.arrival_minutes for line in answering_lines), default=None
                    ),
                    travel_flagged=any(line.travel_flagged for line in answering_lines),
                    version=2 if changed else 1, created_at=created[pk],
                    updated_at=min(updated, now), updated_via_id=invitation_of[pk],
                )
            )  # fmt: skip
            if decision == Reply.Decision.UNAVAILABLE:
                expected.unavailable += 1
                continue
            kind = "available" if decision == Reply.Decision.AVAILABLE else "conditional"
            setattr(expected, kind, getattr(expected, kind) + 1)
            for what, value in (
                ("officers", sum(line.officers for line in answering_lines)),
                ("qualified", sum(line.officers_qualified for line in answering_lines)),
            ):
                name = f"{what}_{kind}"
                setattr(expected, name, getattr(expected, name) + value)
        Reply.objects.bulk_create(replies, batch_size=2000)
        reply_of = dict(Reply.objects.filter(poll=poll).values_list("agency_id", "pk"))
        # What each line copies from its answer and team, as the reply service does.
        kind_of = {pk: (t, level) for pk, t, level in
                   SpecialTeam.objects.values_list("pk", "team_type_id", "level")}  # fmt: skip
        all_lines = []
        for pk, lines in lines_of.items():
            for line in lines:
                line.reply_id, line.decision = reply_of[pk], decision_of[pk]
                line.team_type_id, line.team_level = kind_of[line.team_id]
            all_lines += lines
        ReplyLine.objects.bulk_create(all_lines, batch_size=2000)
        expected.lines = len(all_lines)
    return poll, expected


def analyse_tables() -> None:
    """PostgreSQL: the statistics and visibility map autovacuum would make shortly after."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def sign_in(poll):
    """A test client signed in as the poll's coordinator, who has two-factor set up (the
    middleware checks it on every request, as in production)."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.test import Client

    TOTP.activate(poll.created_by, generate_totp_secret())
    client = Client(HTTP_HOST=HOST)
    client.force_login(poll.created_by)
    return client


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Statement:
    sql: str
    params: object
    many: bool
    seconds: float

    @property
    def reads(self) -> bool:
        head = self.sql.lstrip().upper()
        return not self.many and head.startswith(("SELECT", "WITH")) and "FOR UPDATE" not in head

    def short(self, length: int = 200) -> str:
        return " ".join(self.sql.split())[:length]


class Recorder:
    """An execute wrapper keeping every statement with its parameters and its execute time."""

    def __init__(self):
        self.statements: list[Statement] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            seconds = time.perf_counter() - start
            self.statements.append(Statement(sql, params, many, seconds))


def get(client, url: str, errors: list[str], *, live: bool = False, status: int = 200):
    """GET url; `live` as the page's own refresh does it (htmx), `status` the one expected."""
    response = client.get(url, headers={"HX-Request": "true"} if live else {})
    if response.status_code != status:
        errors.append(f"GET {url}: {response.status_code}, not {status}")
    return response


def capture(client, url: str, errors: list[str], **how) -> tuple[object, list[Statement]]:
    """One request with every statement it executes recorded."""
    from django.db import connection

    recorder = Recorder()
    with connection.execute_wrapper(recorder):
        response = get(client, url, errors, **how)
    return response, recorder.statements


def capture_live(client, url: str, errors: list[str]):
    return capture(client, url, errors, live=True, status=204)


def time_requests(
    client, url: str, repeat: int, errors: list[str], *, cold: bool = False, **how
) -> list[float]:
    """Milliseconds of each of `repeat` requests, after WARMUPS untimed ones; `cold` empties
    the cache before each (as a new answer does: the figures are computed again)."""
    from django.core.cache import cache

    for _ in range(WARMUPS):
        get(client, url, errors, **how)
    times = []
    for _ in range(repeat):
        if cold:
            cache.clear()
        start = time.perf_counter()
        get(client, url, errors, **how)
        times.append((time.perf_counter() - start) * 1000)
    return times


def run_statements(statements: list[Statement]) -> list[float]:
    """Each statement executed as it was, all rows fetched: milliseconds of each."""
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for statement in statements:
            start = time.perf_counter()
            cursor.execute(statement.sql, statement.params)
            if cursor.description is not None:
                cursor.fetchall()
            times.append((time.perf_counter() - start) * 1000)
    return times


def time_statements(statements: list[Statement], repeat: int) -> tuple[list[float], list[float]]:
    """Total milliseconds of the whole set per repeat, and each statement's median."""
    run_statements(statements)  # warm-up
    totals, each = [], []
    for _ in range(repeat):
        times = run_statements(statements)
        totals.append(sum(times))
        each.append(times)
    medians = [statistics.median(column) for column in zip(*each, strict=True)]
    return totals, medians


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def spread(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.1f} ms, p90 {percentile(values, 0.9):.1f} ms, "
        f"max {max(values):.1f} ms"
    )


def explain(statement: Statement) -> str:
    from django.db import connection

    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS) "
        if connection.vendor == "postgresql"
        else "EXPLAIN QUERY PLAN "
    )
    with connection.cursor() as cursor:
        cursor.execute(prefix + statement.sql, statement.params)
        rows = cursor.fetchall()
    return "\n".join("    " + " | ".join(str(c) for c in row) for row in rows)


def check_summary(data: dict, expected: Expected, errors: list[str]) -> None:
    """The whole poll's figures (?within=all) against what was generated."""
    headline = data["headline"]
    pairs = {
        "agencies_asked": expected.asked,
        "agencies_replied": expected.replied,
        "agencies_available": expected.available,
        "agencies_conditional": expected.conditional,
        "agencies_unavailable": expected.unavailable,
        "officers_available": expected.officers_available,
        "officers_conditional": expected.officers_conditional,
        "officers_qualified_available": expected.qualified_available,
        "officers_qualified_conditional": expected.qualified_conditional,
    }
    for key, want in pairs.items():
        if headline.get(key) != want:
            errors.append(f"summary {key}: {headline.get(key)}, expected {want}")
    total = expected.officers_available + expected.officers_conditional
    last = data["arrival_curve"][-1]["with_conditions"]
    if last != total:
        errors.append(f"arrival curve ends at {last} officers, expected {total}")
    if data["need"] is None:
        errors.append("summary without the poll's need")


def run(args: argparse.Namespace, database: BenchDatabase) -> dict:
    from django.core.management import call_command
    from django.db import connection
    from django.urls import reverse

    busy = machine_busy()
    if busy > 0.25:
        print(f"note: {busy:.0%} of the CPUs were busy before the run: the figures may be high")

    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter() - start
    poll, expected = create_data(args)
    analyse_tables()
    client = sign_in(poll)
    print(
        f"database: {database.kind} ({connection.vendor} {connection.Database.__name__}, "
        f"{database.name}); migrated in {migrated:.1f}s, then created {expected.asked:,} "
        f"agencies asked, {expected.teams:,} teams, {expected.replied:,} replies "
        f"({expected.available:,} available, {expected.conditional:,} conditional, "
        f"{expected.unavailable:,} unavailable) and {expected.lines:,} team lines in "
        f"{time.perf_counter() - start - migrated:.1f}s"
    )

    errors: list[str] = []
    page_url = reverse("poll-dashboard", args=[poll.pk])
    summary_url = reverse("poll-dashboard-summary", args=[poll.pk])
    check_summary(get(client, f"{summary_url}?within=all", errors).json(), expected, errors)

    page, page_statements = capture(client, page_url, errors)
    _, summary_statements = capture(client, summary_url, errors)
    _, all_statements = capture(client, f"{page_url}?within=all", errors)
    in_request = sum(s.seconds for s in page_statements) * 1000

    repeat = args.repeat
    page_times = time_requests(client, page_url, repeat, errors)
    _, warm_statements = capture(client, page_url, errors)  # as timed: the summary cached
    summary_times = time_requests(client, summary_url, repeat, errors)
    cold_times = time_requests(client, summary_url, repeat, errors, cold=True)
    page_cold_times = time_requests(client, page_url, repeat, errors, cold=True)
    all_times = time_requests(client, f"{page_url}?within=all", repeat, errors)
    # The live refresh when nothing changed: the page's own htmx request with its stamp.
    stamp = STAMP.search(page.content.decode()).group(1)
    refresh_url = f"{page_url}?stamp={stamp}"
    refresh_times = time_requests(client, refresh_url, repeat, errors, live=True, status=204)
    _, refresh_statements = capture_live(client, refresh_url, errors)
    print(f"page {page_url} ({len(page.content) / 1000:.0f} kB, {len(page_statements)} queries, "
          f"{repeat} requests): {spread(page_times)}")  # fmt: skip
    print(f"summary {summary_url} ({len(summary_statements)} queries): {spread(summary_times)}")
    print(f"summary computed afresh (after a change, the cache emptied): {spread(cold_times)}")
    print(f"page after a change (the first watcher: summary and lists afresh): "
          f"{spread(page_cold_times)}")  # fmt: skip
    print(f"page ?within=all ({len(all_statements)} queries): {spread(all_times)}")
    print(f"live refresh, nothing new (204, {len(refresh_statements)} queries): "
          f"{spread(refresh_times)}")  # fmt: skip

    summary_reads = [s for s in summary_statements if s.reads]
    page_reads = [s for s in page_statements if s.reads]
    skipped = len(summary_statements) - len(summary_reads)
    sql_totals, _ = time_statements(summary_reads, max(repeat, 5))
    page_sql_totals, page_each = time_statements(page_reads, max(repeat, 5))
    warm_sql_totals, _ = time_statements([s for s in warm_statements if s.reads], max(repeat, 5))
    page_p50, sql_p50 = statistics.median(page_times), statistics.median(sql_totals)
    page_sql_p50 = statistics.median(page_sql_totals)
    warm_sql_p50 = statistics.median(warm_sql_totals)
    page_sql_ratio = page_p50 / warm_sql_p50 if warm_sql_p50 else 0.0
    page_cold_p50 = statistics.median(page_cold_times)
    # The page computed afresh against the bare SQL of the statements such a request runs.
    cold_sql_ratio = page_cold_p50 / page_sql_p50 if page_sql_p50 else 0.0
    ratio = page_p50 / sql_p50 if sql_p50 else 0.0
    print(
        f"bare SQL of one summary request ({len(summary_reads)} statements"
        f"{f', {skipped} writes left out' if skipped else ''}): {spread(sql_totals)}"
    )
    print(
        f"bare SQL of one page request ({len(page_reads)} statements): {spread(page_sql_totals)}; "
        f"their execute time inside the page request was {in_request:.1f} ms"
    )
    print(
        f"bare SQL of one page request as timed, the summary cached ({len(warm_statements)} "
        f"statements): {spread(warm_sql_totals)}; the page p50 is {page_sql_ratio:.1f}x that "
        f"(aim: at most {SQL_RATIO_AIM}x); after a change, the page p50 {page_cold_p50:.1f} ms "
        f"is {cold_sql_ratio:.1f}x the bare SQL of a page computed afresh"
    )
    print(
        f"ratio: page p50 {page_p50:.1f} ms is {ratio:.1f}x the summary's bare SQL, "
        f"{page_p50 / page_sql_p50 if page_sql_p50 else 0:.1f}x its own; the page "
        f"{'meets' if page_p50 <= AIM_MS else 'misses'} the {AIM_MS} ms aim"
    )

    in_summary = {s.sql for s in summary_reads}
    ranked = sorted(zip(page_each, page_reads, strict=True), key=lambda pair: -pair[0])
    print("slowest statements of the page (median of the re-runs; * also in the summary):")
    for ms, statement in ranked[: args.top]:
        mark = "*" if statement.sql in in_summary else " "
        print(f"  {ms:8.2f} ms {mark} {statement.short()}")
    for ms, statement in ranked[: args.explain]:
        print(f"plan of the {ms:.2f} ms statement {statement.short(80)}...:")
        print(explain(statement))

    for error in errors[:20]:
        print(f"error: {error}")
    return {
        "page_p50_ms": round(page_p50, 2),
        "page_p90_ms": round(percentile(page_times, 0.9), 2),
        "page_max_ms": round(max(page_times), 2),
        "summary_p50_ms": round(statistics.median(summary_times), 2),
        "summary_p90_ms": round(percentile(summary_times, 0.9), 2),
        "summary_cold_p50_ms": round(statistics.median(cold_times), 2),
        "page_cold_p50_ms": round(page_cold_p50, 2),
        "page_cold_sql_ratio": round(cold_sql_ratio, 2),
        "sql_p50_ms": round(sql_p50, 2),
        "ratio": round(ratio, 2),
        "queries": len(page_statements),
        "summary_queries": len(summary_statements),
        "page_sql_p50_ms": round(page_sql_p50, 2),
        "page_warm_sql_p50_ms": round(warm_sql_p50, 2),
        "page_sql_ratio": round(page_sql_ratio, 2),
        "page_sql_ratio_aim": SQL_RATIO_AIM,
        "page_in_request_sql_ms": round(in_request, 2),
        "page_all_p50_ms": round(statistics.median(all_times), 2),
        "refresh_204_p50_ms": round(statistics.median(refresh_times), 2),
        "refresh_204_queries": len(refresh_statements),
        "page_all_queries": len(all_statements),
        "page_kb": round(len(page.content) / 1000, 1),
        "slowest_sql": [[round(ms, 2), s.short(80)] for ms, s in ranked[:3]],
        "aim_ms": AIM_MS,
        "meets_aim": page_p50 <= AIM_MS,
        "refresh_aim_ms": REFRESH_AIM_MS,
        "errors": len(errors),
        "agencies": expected.asked,
        "teams": expected.teams,
        "replies": expected.replied,
        "lines": expected.lines,
        "repeat": repeat,
        "backend": connection.vendor,
        "database": database.kind,
        "busy_before": round(busy, 2),
    }


def main() -> None:
    args = parse_args()
    database = BenchDatabase()
    try:
        database.create()
        # Before django.setup(): development settings (no SSL redirect), DEBUG off, no Redis
        # (the dashboard uses none; Celery runs eagerly), and a host the settings allow.
        for name in NOT_FOR_THE_SERVER:
            os.environ.pop(name, None)
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "readiness.settings",
                "DEBUG": "false",
                "ALLOWED_HOSTS": HOST,
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
