"""Benchmark of the members' level (issue 19): member answers by personal link through gunicorn
under concurrent load, against the same server's trivial view; and the commander's roll-up (the
answer form with the members' tally) for teams of 50 and 500 members.

Run from the repository root:

    python bench/members.py                   # 20,000 member answers (40 teams of 500), 8 clients
    python bench/members.py --small           # 1,000 answers, a shorter trivial phase
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/members.py

Like bench/replies.py (whose server, clients and throwaway database it uses), it never touches
the developer's database. The data: --members members on teams of 500 (one agency each, with a
commander's login), one open poll, every member asked (a MemberAsk with a personal link whose
token only this process knows: the database keeps the hash), each with a required qualification
that a tenth of them let expire.

Phases, measured in one run:
  pages    each member's answer page, GET once (keeps the CSRF cookie and token): `page_rps`
  trivial  GET /healthz for --seconds in all: `trivial_rps`; in ten slices, each followed by a
           tenth of the answers (replies.run_with_trivial: both see the same machine)
  answers  each member's answer POSTed (willing, leaving in 15-120 minutes, from the station or
           home), expecting the "recorded" page: `member_answer_rps`, `ratio` =
           member_answer_rps / trivial_rps, `p50_ms`, `p99_ms`
  roll-up  in this process (Django's test client, the commander signed in): the answer form of a
           team of 500 answered members and of a team of 50, --rollups times each: `rollup_p50_ms`
           (500), `rollup_queries` (500) against `rollup_queries_50`: constant in members
Afterwards the stored answers are compared with what was acknowledged: `lost` (acknowledged, not
stored) and `mismatched` (stored with another departure). The last line is one JSON object; the
bench exits non-zero on errors, lost or mismatched.
"""

import argparse
import http.client
import http.cookies
import json
import os
import queue
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fanout import create_agencies, create_poll  # noqa: E402 (helpers shared by the benches)
from import_registry import BenchDatabase  # noqa: E402
from replies import (  # noqa: E402
    CSRF_INPUT,
    FORM,
    Server,
    error_kind,
    machine_busy,
    queue_of,
    run_phase,
    run_with_trivial,
)

TEAM = 500


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="trivial phase length")
    parser.add_argument("--rollups", type=int, default=20, help="roll-up pages timed per size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--conn-max-age", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--small", action="store_true", help="1,000 answers; 2 s trivial phase")
    args = parser.parse_args()
    if args.small:
        args.members, args.seconds, args.rollups = 1000, 2.0, 10
    args.members = max(TEAM, args.members - args.members % TEAM)
    return args


class Ask:
    def __init__(self, pk: int, token: str, depart: int, start: str):
        self.pk, self.path, self.depart, self.start = pk, f"/m/{token}/", depart, start
        self.cookie = self.csrf = ""
        self.acked = False

    def body(self) -> bytes:
        return urlencode({"csrfmiddlewaretoken": self.csrf, "answer": "willing",
                          "depart_other": self.depart, "start": self.start}).encode()  # fmt: skip


def create_data(n: int, seed: int):
    """n members on teams of TEAM (one agency each) and a team of 50 for the size comparison;
    one open poll requiring a qualification; every member asked, with a link."""
    from django.db import transaction
    from django.utils import timezone

    from agencies.models import (
        Contact,
        MemberQualification,
        Qualification,
        SpecialTeam,
        TeamMember,
        TeamType,
    )  # fmt: skip
    from readiness.models import User
    from surveys.models import Invitation, MemberAsk, MemberLink, Poll

    rng = random.Random(seed)
    now, today = timezone.now(), timezone.localdate()
    teams_n = n // TEAM
    with transaction.atomic():
        region, agencies = create_agencies(teams_n + 1, rng)
        swat = TeamType.objects.get(code="swat")
        SpecialTeam.objects.bulk_create(
            [SpecialTeam(code=f"{code}-srt", name="SRT", agency_id=pk, team_type=swat, level=2,
                         members=TEAM if k < teams_n else 50)
             for k, (pk, code) in enumerate(agencies)],
        )  # fmt: skip
        poll = create_poll(region, state=Poll.State.OPEN, sent_at=now)
        poll.target_team_types.set([swat])
        cert = Qualification.objects.get_or_create(code="swat", defaults={"name": "SWAT"})[0]
        poll.required_qualifications.set([cert])
        teams = list(SpecialTeam.objects.filter(agency__region=region).order_by("pk"))
        TeamMember.objects.bulk_create(
            (TeamMember(team=t, agency_id=t.agency_id, name=f"Member {k:04d}",
                        email=f"m{k}.{t.pk}@bench.example", home_base=f"Benchville {k % 50}")
             for t in teams for k in range(t.members)),
            batch_size=2000,
        )  # fmt: skip
        members = list(TeamMember.objects.filter(team__in=teams).order_by("pk"))
        MemberQualification.objects.bulk_create(
            (MemberQualification(member=m, qualification=cert,
                                 expires_on=today + timezone.timedelta(days=-1 if k % 10 == 0
                                                                       else 200))
             for k, m in enumerate(members)),
            batch_size=2000,
        )  # fmt: skip
        contacts = dict(Contact.objects.values_list("agency_id", "pk"))
        Invitation.objects.bulk_create(
            Invitation(poll=poll, agency_id=pk, contact_id=contacts[pk], channel="email",
                       email="chief@bench.example", distance_km=30.0, travel_minutes=25,
                       state=Invitation.State.SENT, sent_at=now, attempts=1)
            for pk, _ in agencies
        )  # fmt: skip
        answer_by = poll.deadline - timezone.timedelta(hours=1)
        MemberAsk.objects.bulk_create(
            (MemberAsk(poll=poll, agency_id=m.agency_id, team_id=m.team_id, member=m,
                       asked_at=now, answer_by=answer_by, state=MemberAsk.State.SENT, sent_at=now)
             for m in members),
            batch_size=2000,
        )  # fmt: skip
        asks = list(MemberAsk.objects.filter(poll=poll).order_by("pk").values_list("pk", "team"))
        tokens = {pk: secrets.token_urlsafe(16) for pk, _ in asks}
        MemberLink.objects.bulk_create(
            (MemberLink(ask_id=pk, token_hash=MemberAsk.hash_token(tokens[pk])) for pk, _ in asks),
            batch_size=2000,
        )  # fmt: skip
        commanders = {}
        for t in (teams[0], teams[-1]):
            commanders[t.members] = User.objects.create_user(
                f"commander{t.pk}@bench.example", full_name="Bench Commander",
                role=User.Role.COMMANDER, agency_id=t.agency_id,
            )  # fmt: skip
    big = {t.pk for t in teams if t.members == TEAM}
    work = [
        Ask(pk, tokens[pk], rng.choice((15, 30, 45, 60, 90, 120)), rng.choice(("station", "home")))
        for pk, team in asks
        if team in big
    ]
    small = [pk for pk, team in asks if team not in big]
    return poll, work, small, commanders


def page_work(asks: list[Ask]):
    """GET each member's page once; keep its CSRF cookie and token for the POST."""
    todo = queue_of(asks)

    def work(connection, record) -> None:
        while True:
            try:
                ask = todo.get_nowait()
            except queue.Empty:
                return
            try:
                response, data, took = connection.request("GET", ask.path)
            except (OSError, http.client.HTTPException) as exc:
                record(None, error_kind(exc))
                continue
            cookie = http.cookies.SimpleCookie()
            for header in response.msg.get_all("Set-Cookie") or []:
                cookie.load(header)
            csrf = CSRF_INPUT.search(data)
            if response.status != 200 or "csrftoken" not in cookie or not csrf:
                record(None, f"page {response.status}")
                continue
            ask.cookie, ask.csrf = cookie["csrftoken"].value, csrf[1].decode()
            record(took)

    return work


def answer_work(asks: list[Ask]):
    todo = queue_of(asks)

    def work(connection, record) -> None:
        while True:
            try:
                ask = todo.get_nowait()
            except queue.Empty:
                return
            headers = {"Content-Type": FORM, "Cookie": f"csrftoken={ask.cookie}"}
            try:
                response, data, took = connection.request("POST", ask.path, ask.body(), headers)
            except (OSError, http.client.HTTPException) as exc:
                record(None, error_kind(exc))
                continue
            if response.status == 200 and b"your answer is recorded" in data:
                ask.acked = True
                record(took)
            else:
                record(None, f"answer {response.status}")

    return work


def rollup(poll, commander, times: int) -> tuple[float, int]:
    """p50 ms and queries of the commander's answer form with the members' tally."""
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(commander)
    url = reverse("surveys:my-agency-reply", args=[poll.pk])
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    client.get(url)  # the first request of a process caches the poll's targets
    with connection.execute_wrapper(count):
        response = client.get(url)
    assert response.status_code == 200 and b"What your members said" in response.content
    queries = len(statements)
    took = []
    for _ in range(times):
        start = time.perf_counter()
        client.get(url)
        took.append(time.perf_counter() - start)
    return 1000 * statistics.median(took), queries


def run(args: argparse.Namespace, database: BenchDatabase) -> dict:
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from surveys.models import MemberAsk

    busy = machine_busy()
    if busy > 0.25:
        print(f"note: {busy:.0%} of the CPUs were busy before the run: the figures may be low")
    call_command("migrate", verbosity=0)
    poll, asks, small, commanders = create_data(args.members, args.seed)
    database.settle()
    print(f"database: {database.kind}; {len(asks):,} members asked on teams of {TEAM}")
    connections.close_all()
    log_dir = tempfile.mkdtemp(prefix="readiness_bench_server_")
    server = Server(args, log_dir, None)
    try:
        server.start()
        server.wait_ready()
        pages = run_phase("pages", args.clients, server.port, server, page_work(asks))
        trivial, answers = run_with_trivial("answers", args.clients, server.port, server, asks,
                                            answer_work, args.seconds)  # fmt: skip
        for phase in (trivial, pages, answers):
            print(phase.report())
        problems = server.problems()
    finally:
        server.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    stored = dict(
        MemberAsk.objects.filter(poll=poll).exclude(answer="").values_list("pk", "depart_minutes")
    )
    lost = sum(1 for a in asks if a.acked and a.pk not in stored)
    mismatched = sum(1 for a in asks if a.acked and a.pk in stored and stored[a.pk] != a.depart)
    # The team of 50 answers too (in-process), so both roll-ups show a full tally.
    MemberAsk.objects.filter(pk__in=small).update(
        answer="willing", depart_minutes=30, travel_minutes=20, answered_at=timezone.now()
    )
    p50_500, queries_500 = rollup(poll, commanders[TEAM], args.rollups)
    p50_50, queries_50 = rollup(poll, commanders[50], args.rollups)
    print(f"roll-up: team of {TEAM} p50 {p50_500:.1f} ms, {queries_500} queries; team of 50 "
          f"p50 {p50_50:.1f} ms, {queries_50} queries")  # fmt: skip
    errors = sum(sum(p.errors.values()) for p in (trivial, pages, answers))
    return {
        "member_answer_rps": round(answers.rps, 1),
        "trivial_rps": round(trivial.rps, 1),
        "ratio": round(answers.rps / trivial.rps, 3) if trivial.rps else None,
        "p50_ms": round(answers.percentile_ms(0.5), 2),
        "p99_ms": round(answers.percentile_ms(0.99), 2),
        "answer_cpu_ms": round(answers.cpu_ms, 2),
        "trivial_cpu_ms": round(trivial.cpu_ms, 2),
        "page_rps": round(pages.rps, 1),
        "rollup_p50_ms": round(p50_500, 1),
        "rollup_queries": queries_500,
        "rollup_p50_ms_50": round(p50_50, 1),
        "rollup_queries_50": queries_50,
        "lost": lost,
        "mismatched": mismatched,
        "errors": errors,
        "members": len(asks),
        "database": database.kind,
        "server_log_errors": problems.total(),
        "busy_before": round(busy, 2),
    }


def main() -> None:
    args = parse_args()
    database = BenchDatabase()
    try:
        database.create()
        os.environ["DJANGO_SETTINGS_MODULE"] = "readiness.settings"
        for name in ("REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "EMAIL_HOST", "DJANGO_ENV"):
            os.environ.pop(name, None)
        os.environ.update(DEBUG="false", ALLOWED_HOSTS="127.0.0.1,testserver")
        import django

        django.setup()
        figures = run(args, database)
    finally:
        database.drop()
    print(json.dumps(figures))
    if figures["errors"] or figures["lost"] or figures["mismatched"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
