"""Benchmark of the waves' decision (issue 20): the rule that decides whether a poll asked in
waves invites its next ring, for a poll of 20,000 agencies, against the same for 2,000 (the
statements must not grow with the agencies) and against a bare count of the same tables.

Run from the repository root:

    python bench/waves.py                 # 20,000 agencies asked in 4 rings, 12,000 answers
    python bench/waves.py --small         # 2,000 agencies (and 200 for the comparison)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/waves.py

Like the other benches it never touches the developer's database (a throwaway one on the server
DATABASE_URL names, or a temporary SQLite file). The data: --agencies agencies (and a tenth as
many in a second region, for the size comparison), each with a SWAT team of 8-30 members and a
primary contact; per region a poll needing a million officers within 3 hours (never covered),
asked in rings of 45, 90 and 180 minutes and the rest, every agency recorded as asked by one of
those waves, and 60% of them answered (yes 70%, no 30%), each yes with one team line arriving in
20 minutes to 6 hours. Nothing is invited while measuring: the need is far from covered and the
next ring is held back by the wait.

Measured in this process, each --repeat times after 2 warm-ups:
  decision  waves.advance() on the large poll (the figures, then the wait check): its p50
            `decision_p50_ms`, and the statements it runs (`queries`), against the small poll's
            (`queries_small`, which must be equal)
  figures   waves.figures() alone: `figures_p50_ms`
  bare      SELECT COUNT(*) of the poll's asked agencies and of its team lines:
            `bare_p50_ms`, and `ratio` = decision_p50_ms / bare_p50_ms
The last line printed is one JSON object with the figures; the bench exits non-zero when the
statements grow with the agencies or the decision is not "waiting".
"""

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from import_registry import BenchDatabase  # noqa: E402 (the throwaway database, shared)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--small", action="store_true", help="2,000 agencies; 10 repeats")
    args = parser.parse_args()
    if args.small:
        args.agencies, args.repeat = 2000, 10
    return args


def create_poll_of(n: int, rng: random.Random, label: str):
    """n agencies in a region of their own, asked by a poll in waves, 60% answered."""
    from django.utils import timezone

    from agencies.models import Agency, Contact, Region, SpecialTeam, TeamType
    from readiness.models import User
    from surveys.models import Poll, Reply, ReplyLine, Wave, WaveAgency

    now = timezone.now()
    region = Region.objects.create(name=f"Bench region {label}")
    Agency.objects.bulk_create(
        (Agency(code=f"{label}-{k}", name=f"Bench {label} {k:05d} PD", kind="municipal",
                region=region, latitude=41.0 + rng.random() * 2, longitude=-89.0 + rng.random() * 2,
                sworn_officers=100) for k in range(n)),
        batch_size=2000,
    )  # fmt: skip
    agencies = list(Agency.objects.filter(region=region).values_list("pk", flat=True))
    swat = TeamType.objects.get_or_create(code="swat", defaults={"name": "SWAT"})[0]
    members = {pk: rng.randint(8, 30) for pk in agencies}
    SpecialTeam.objects.bulk_create(
        (SpecialTeam(code=f"{label}-{pk}-t", name="SRT", agency_id=pk, team_type=swat,
                     members=members[pk]) for pk in agencies),
        batch_size=2000,
    )  # fmt: skip
    Contact.objects.bulk_create(
        (Contact(agency_id=pk, name="Chief", email=f"{label}{pk}@bench.example", role="primary")
         for pk in agencies),
        batch_size=2000,
    )  # fmt: skip
    coordinator = User.objects.get_or_create(
        email="coordinator@bench.example",
        defaults={"full_name": "Bench Coordinator", "role": User.Role.COORDINATOR},
    )[0]
    sent = now - datetime.timedelta(minutes=20)
    poll = Poll.objects.create(
        title=f"Waves {label}", message="Could you respond?", destination_name="Chicago",
        destination_latitude=41.88, destination_longitude=-87.63, created_by=coordinator,
        deadline=now + datetime.timedelta(hours=6), state=Poll.State.OPEN, sent_at=sent,
        officers_needed=10**6, needed_by=sent + datetime.timedelta(hours=3),
        wave_rings=[45, 90, 180], wave_wait_minutes=60, waves_state=Poll.Waves.RUNNING,
    )  # fmt: skip
    poll.target_regions.set([region])
    poll.target_team_types.set([swat])
    waves = Wave.objects.bulk_create(
        Wave(poll=poll, number=k, max_travel_minutes=b, state="sent" if k < 4 else "pending",
             decided_at=sent + datetime.timedelta(minutes=5 * k) if k < 4 else None)
        for k, b in ((1, 45), (2, 90), (3, 180), (4, None))
    )  # fmt: skip
    WaveAgency.objects.bulk_create(
        (WaveAgency(poll=poll, wave=waves[k % 3], agency_id=pk, officers_on_record=members[pk])
         for k, pk in enumerate(agencies)),
        batch_size=2000,
    )  # fmt: skip
    in_region = SpecialTeam.objects.filter(agency__region=region)
    teams = dict(in_region.values_list("agency_id", "pk"))
    kinds = dict(in_region.values_list("agency_id", "level"))
    answering = [pk for pk in agencies if rng.random() < 0.6]
    replies, lines = [], []
    for pk in answering:
        yes = rng.random() < 0.7
        officers = max(1, members[pk] // 2) if yes else 0
        arrival = rng.randint(20, 360)
        replies.append(Reply(
            poll=poll, agency_id=pk, decision="available" if yes else "unavailable",
            decline_reason="" if yes else "Committed", authorised_by_name="Chief",
            authorised_by_rank="Chief", officers=officers, version=1,
            earliest_arrival_minutes=arrival if yes else None, created_at=now, updated_at=now,
        ))  # fmt: skip
    Reply.objects.bulk_create(replies, batch_size=2000)
    ids = dict(Reply.objects.filter(poll=poll).values_list("agency_id", "pk"))
    for reply in replies:
        if reply.officers:
            arrival = reply.earliest_arrival_minutes
            lines.append(ReplyLine(
                reply_id=ids[reply.agency_id], poll=poll, team_id=teams[reply.agency_id],
                officers=reply.officers, depart_minutes=15, travel_minutes=arrival - 15,
                arrival_minutes=arrival, estimated_travel_minutes=arrival - 15,
                decision=reply.decision, team_type=swat, team_level=kinds[reply.agency_id],
            ))  # fmt: skip
    ReplyLine.objects.bulk_create(lines, batch_size=2000)
    return poll


def timed(fn, repeat: int) -> list[float]:
    for _ in range(2):
        fn()
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        took.append(1000 * (time.perf_counter() - start))
    return took


def statements_of(fn) -> tuple[int, object]:
    from django.db import connection

    seen = []

    def count(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        result = fn()
    return len(seen), result


def run(args: argparse.Namespace, database: BenchDatabase) -> dict:
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from surveys import waves

    call_command("migrate", verbosity=0)
    rng = random.Random(args.seed)
    start = time.perf_counter()
    with transaction.atomic():
        large = create_poll_of(args.agencies, rng, "L")
        small = create_poll_of(max(args.agencies // 10, 50), rng, "S")
    print(f"database: {database.kind}; built {args.agencies:,} + {args.agencies // 10:,} agencies "
          f"in {time.perf_counter() - start:.1f}s")  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    now = timezone.now()
    queries, outcome = statements_of(lambda: waves.advance(large, now=now))
    queries_small, outcome_small = statements_of(lambda: waves.advance(small, now=now))
    decision = timed(lambda: waves.advance(large, now=now), args.repeat)
    figures_ms = timed(lambda: waves.figures(large), args.repeat)
    found = waves.figures(large)

    def bare():
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM surveys_waveagency WHERE poll_id = %s", [large.pk])
            cursor.fetchall()
            cursor.execute("SELECT COUNT(*) FROM surveys_replyline WHERE poll_id = %s", [large.pk])
            cursor.fetchall()

    bare_ms = timed(bare, args.repeat)
    p50 = statistics.median(decision)
    print(f"decision: {outcome} in p50 {p50:.1f} ms (max {max(decision):.1f}), {queries} "
          f"statements; the small poll's {queries_small} ({outcome_small})")  # fmt: skip
    print(f"figures: p50 {statistics.median(figures_ms):.1f} ms: covered {found.covered} of "
          f"{found.need}, {found.replied:,} of {found.asked:,} answered, projected "
          f"{found.projected}; bare counts p50 {statistics.median(bare_ms):.2f} ms")  # fmt: skip
    return {
        "decision_p50_ms": round(p50, 2),
        "decision_max_ms": round(max(decision), 2),
        "queries": queries,
        "queries_small": queries_small,
        "figures_p50_ms": round(statistics.median(figures_ms), 2),
        "bare_p50_ms": round(statistics.median(bare_ms), 3),
        "ratio": round(p50 / statistics.median(bare_ms), 1),
        "outcome": outcome,
        "agencies": args.agencies,
        "answered": found.replied,
        "database": database.kind,
    }


def main() -> None:
    args = parse_args()
    database = BenchDatabase()
    try:
        database.create()
        os.environ["DJANGO_SETTINGS_MODULE"] = "readiness.settings"
        for name in ("REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "EMAIL_HOST", "DJANGO_ENV"):
            os.environ.pop(name, None)
        os.environ["DEBUG"] = "false"
        import django

        django.setup()
        figures = run(args, database)
    finally:
        database.drop()
    print(json.dumps(figures))
    if figures["queries"] != figures["queries_small"] or figures["outcome"] != "waiting":
        sys.exit(1)


if __name__ == "__main__":
    main()
