"""Benchmark of the registry CSV import (agencies.services.registry_import).

Run from the repository root:

    python bench/import_registry.py            # 20,000 agencies
    python bench/import_registry.py --small    # 1,000 agencies
    python bench/import_registry.py --agencies 5000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/import_registry.py

It never touches the developer's database. With DATABASE_URL pointing at PostgreSQL it creates
a throwaway database (readiness_bench_<pid>) on that server and drops it at the end; otherwise it
uses a temporary SQLite file. The registry is generated deterministically from --seed.

Measured in one run:
  parse     csv.DictReader over the text, materialised into a list: the baseline of `ratio`
            (best of three, as it is short and noisy)
  import    the first import, everything created: `seconds`
  reimport  the identical file again, everything unchanged
  update    the file with ~5% of agency rows changed (sworn_officers + 1), updated in place

Each import's result is checked (ok, and the exact created/updated/unchanged counts); a mismatch
exits non-zero. The last line printed is one JSON object with the figures.
"""

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def words(text: str) -> list[str]:
    return text.split()


RECORDS = ("agency", "team", "contact")
REGIONS = [
    "Region 1 - Northwest",
    "Region 2 - North Central",
    "Region 3 - West Central",
    "Region 4 - Southwest",
    "Region 5 - Southern",
    "Region 6 - East Central",
    "Region 7 - Collar Counties",
    "Region 8 - Cook County",
]
COUNTIES = words(
    "Adams Boone Champaign Cook DeKalb DuPage Fulton Grundy Henry Iroquois Jackson Kane Kankakee "
    "Kendall Knox Lake LaSalle Lee Livingston Macon Madison McHenry McLean Ogle Peoria Sangamon "
    "Stephenson Tazewell Vermilion Whiteside Will Williamson Winnebago"
)
TOWN_START = words(
    "Oak Elm Maple Cedar Pine Ash Willow Birch Hickory Walnut Prairie River Lake Spring Fox "
    "Deer Eagle Hawk Stone Mill Green Fair Clear Silver Red White Black North South East West"
)
TOWN_END = words(
    "field wood ville ton dale brook ford port view ridge haven burg mont crest land grove "
    "side bury wick stead"
)
KINDS = [("municipal", 70), ("sheriff", 10), ("university", 7), ("state", 2), ("other", 11)]
KIND_SUFFIX = {
    "municipal": "Police Department",
    "sheriff": "Sheriff's Office",
    "state": "State Police District",
    "university": "University Police",
    "other": "Park District Police",
}
CHIEF_TITLE = {
    "municipal": "Chief of Police",
    "sheriff": "Sheriff",
    "state": "Captain",
    "university": "Chief of Police",
    "other": "Chief",
}
# team type code -> (valid levels, members range, key/name suffix)
TEAM_KINDS = {
    "swat": ((1, 2, 3), (15, 40), "SRT"),
    "mff": ((1, 2), (27, 80), "MFF"),
    "bomb": ((1, 2, 3, 4), (2, 8), "Bomb"),
    "k9": ((1,), (1, 4), "K9"),
    "dive": ((1, 2, 3, 4), (6, 14), "Dive"),
    "negotiation": ((1, 2), (3, 10), "CNT"),
    "suas": ((1,), (3, 8), "sUAS"),
    "patrol": ((1, 2, 3, 4), (12, 90), "Patrol"),
}
FIRST = words("Alex Jordan Morgan Casey Taylor Riley Jamie Avery Quinn Dana Robin Drew Lee Pat Sam")
LAST = words(
    "Novak Kowalski Rivera Okafor Lindqvist Brennan Haddad Moreno Fischer Nguyen Delgado Walsh "
    "Sorensen Jablonski Mbeki Castillo Horvath Duffy Petrov Ramirez"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="1,000 agencies instead of 20,000")
    parser.add_argument("--agencies", type=int, help="number of agencies (overrides --small)")
    parser.add_argument("--seed", type=int, default=2021, help="seed of the generated registry")
    parser.add_argument(
        "--profile", action="store_true", help="profile each import and print the top calls"
    )
    args = parser.parse_args()
    if args.agencies is None:
        args.agencies = 1_000 if args.small else 20_000
    if args.agencies < 10:
        parser.error("--agencies must be at least 10")
    return args


# --- throwaway database ------------------------------------------------------------------------


class BenchDatabase:
    """A database of the benchmark's own, created before django.setup() and removed after."""

    def __init__(self):
        self.kind = "sqlite"
        self.name = ""
        self._admin: dict | None = None
        self._tempdir: str | None = None

    def create(self) -> None:
        url = os.environ.get("DATABASE_URL", "")
        if urlsplit(url).scheme in ("postgres", "postgresql", "pgsql", "postgis"):
            self._create_postgresql(url)
        else:
            # Any other DATABASE_URL (or none): a temporary SQLite file, never the developer's.
            os.environ.pop("DATABASE_URL", None)
            self._tempdir = tempfile.mkdtemp(prefix="readiness_bench_")
            self.name = os.path.join(self._tempdir, "bench.sqlite3")
            os.environ["SQLITE_PATH"] = self.name

    def _create_postgresql(self, url: str) -> None:
        import dj_database_url
        from psycopg2 import sql

        self.kind = "postgresql"
        self.name = f"readiness_bench_{os.getpid()}"
        config = dj_database_url.parse(url)
        self._admin = {
            "dbname": "postgres",
            "user": config.get("USER") or None,
            "password": config.get("PASSWORD") or None,
            "host": config.get("HOST") or None,
            "port": config.get("PORT") or None,
            **{k: v for k, v in config.get("OPTIONS", {}).items() if isinstance(v, str)},
        }
        # Not `with conn`: psycopg2 opens a transaction there even in autocommit mode.
        conn = self._connect_admin()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        finally:
            conn.close()
        parts = urlsplit(url)
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{self.name}"))

    def _connect_admin(self):
        import psycopg2

        conn = psycopg2.connect(**{k: v for k, v in self._admin.items() if v is not None})
        conn.autocommit = True
        return conn

    def settle(self) -> None:
        """VACUUM ANALYZE the data just created, as autovacuum keeps a production database: left
        to autovacuum, it would come round during a measured phase, at random (its CPU taken
        from the server's, and its statistics changing the plans mid-run). PostgreSQL only."""
        if self.kind != "postgresql":
            return
        from django.db import connection

        with connection.cursor() as cursor:  # autocommit: VACUUM cannot run in a transaction
            cursor.execute("VACUUM ANALYZE")

    def drop(self) -> None:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
        if self._admin is None:
            return
        import psycopg2
        from psycopg2 import sql

        conn = self._connect_admin()
        try:
            with conn.cursor() as cur:
                name = sql.Identifier(self.name)
                try:
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
                except psycopg2.errors.SyntaxError:  # PostgreSQL before 13
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(name))
        finally:
            conn.close()


# --- the generated registry --------------------------------------------------------------------


def build_rows(n_agencies: int, seed: int) -> tuple[list[dict], dict[str, int]]:
    """Agency, team and contact rows for n_agencies agencies, and how many of each record."""
    from django.utils.text import slugify

    rng = random.Random(seed)
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    agencies: list[dict] = []
    used_names: set[str] = set()
    for i in range(n_agencies):
        kind = rng.choices(kinds, weights)[0]
        town = f"{rng.choice(TOWN_START)}{rng.choice(TOWN_END)}"
        name = f"{town} {KIND_SUFFIX[kind]}"
        if name.lower() in used_names:
            name = f"{town} {KIND_SUFFIX[kind]} {i}"
        used_names.add(name.lower())
        key = f"{slugify(name)[:56]}-{i}"  # unique whatever the name
        if kind == "state":
            sworn = rng.randint(150, 900)
        elif kind == "sheriff":
            sworn = rng.randint(15, 400)
        else:
            sworn = min(max(1, int(rng.lognormvariate(3.0, 1.0))), 12_000)
        agencies.append(
            {
                "record": "agency",
                "key": key,
                "name": name,
                "kind": kind,
                "region": rng.choice(REGIONS),
                "county": rng.choice(COUNTIES),
                "city": town,
                "address": f"{rng.randint(1, 9999)} {rng.choice(TOWN_START)} St",
                "latitude": f"{rng.uniform(37.0, 42.5):.5f}",
                "longitude": f"{rng.uniform(-91.4, -87.6):.5f}",
                "sworn_officers": sworn,
                "min_home_staffing": round(sworn * rng.uniform(0.5, 0.8)),
            }
        )

    counts = {"agency": n_agencies, "team": 0, "contact": 0, "membership": 0}
    rows: list[dict] = []
    for i, agency in enumerate(agencies):
        rows.append(agency)
        key = agency["key"]
        short = agency["city"]
        if rng.random() < 0.5:  # about half the agencies have one or two teams
            for type_code in rng.sample(sorted(TEAM_KINDS), k=rng.choice((1, 2))):
                levels, (low, high), suffix = TEAM_KINDS[type_code]
                members = rng.randint(low, high)
                member_agencies = ""
                if rng.random() < 0.15:  # a multi-agency team
                    others = rng.sample(range(n_agencies), k=rng.randint(1, 4))
                    shares = {agencies[j]["key"]: rng.randint(1, 6) for j in others if j != i}
                    members = max(members, sum(shares.values()) + rng.randint(1, 10))
                    member_agencies = "; ".join(f"{k}:{v}" for k, v in sorted(shares.items()))
                    counts["membership"] += len(shares)
                rows.append(
                    {
                        "record": "team",
                        "key": f"{key}-{type_code}",
                        "agency": key,
                        "name": f"{short} {suffix}",
                        "team_type": type_code,
                        "level": rng.choice(levels) if rng.random() < 0.9 else "",
                        "members": members,
                        "member_agencies": member_agencies,
                        "commander_name": f"Lt. {rng.choice(FIRST)} {rng.choice(LAST)}",
                        "commander_phone": f"(217) 555-{rng.randrange(10_000):04d}",
                        "notes": "Synthetic benchmark data.",
                    }
                )
                counts["team"] += 1
        domain = f"{key[:40].strip('-')}.example"
        for role, title in (("primary", CHIEF_TITLE[agency["kind"]]), ("alternate", "Lieutenant")):
            if role == "alternate" and rng.random() < 0.2:
                continue  # most agencies have an alternate contact
            first, last = rng.choice(FIRST), rng.choice(LAST)
            rows.append(
                {
                    "record": "contact",
                    "agency": key,
                    "name": f"{first} {last}",
                    "title": title,
                    "email": f"{first}.{last}.{role}@{domain}".lower(),
                    "phone": f"(312) 555-{rng.randrange(10_000):04d}",
                    "contact_role": role,
                }
            )
            counts["contact"] += 1
    return rows, counts


def with_changed_agencies(rows: list[dict], seed: int, share: float = 0.05) -> tuple[list, int]:
    """A copy of rows with `share` of the agency rows changed (sworn_officers + 1)."""
    rng = random.Random(seed + 1)
    agency_indexes = [i for i, r in enumerate(rows) if r["record"] == "agency"]
    chosen = set(rng.sample(agency_indexes, k=max(1, round(len(agency_indexes) * share))))
    changed = [
        {**r, "sworn_officers": r["sworn_officers"] + 1} if i in chosen else r
        for i, r in enumerate(rows)
    ]
    return changed, len(chosen)


# --- measuring ---------------------------------------------------------------------------------


def check(label: str, result, created: dict, updated: dict, unchanged: dict) -> None:
    if not result.ok:
        errors = "\n  ".join(str(e) for e in result.errors[:20])
        raise SystemExit(f"{label}: the import failed, {len(result.errors)} error(s):\n  {errors}")
    for what, got, want in (
        ("created", result.created, created),
        ("updated", result.updated, updated),
        ("unchanged", result.unchanged, unchanged),
    ):
        got = {r: got[r] for r in RECORDS}
        want = {r: want.get(r, 0) for r in RECORDS}
        if got != want:
            raise SystemExit(f"{label}: {what} {got}, expected {want} ({result.summary()})")


def timed_import(text: str, profile: bool = False):
    from agencies.services import registry_import

    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    result = registry_import(text=text)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)
        print(out.getvalue())
    return result, seconds


def parse_baseline(text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        best = min(best, time.perf_counter() - start)
        del rows
    return best


def run(args: argparse.Namespace, database: BenchDatabase) -> dict:
    from django.core.management import call_command
    from django.db import connection

    from agencies.models import Agency, Contact, Region, SpecialTeam, TeamMembership

    call_command("migrate", verbosity=0)
    Region.objects.bulk_create([Region(name=name) for name in REGIONS])

    start = time.perf_counter()
    rows, counts = build_rows(args.agencies, args.seed)
    from agencies.demo import rows_to_csv

    text = rows_to_csv(rows)
    changed_rows, n_changed = with_changed_agencies(rows, args.seed)
    changed_text = rows_to_csv(changed_rows)
    generate_seconds = time.perf_counter() - start
    n_rows = len(rows)
    print(
        f"database: {database.kind} ({connection.vendor}, {database.name}); "
        f"generated {n_rows:,} rows ({counts['agency']:,} agencies, {counts['team']:,} teams, "
        f"{counts['membership']:,} memberships, {counts['contact']:,} contacts; "
        f"{len(text) / 1e6:.1f} MB) in {generate_seconds:.2f}s"
    )

    parse_seconds = parse_baseline(text)
    print(f"parse baseline (csv.DictReader, best of 3): {parse_seconds:.3f}s")

    result, seconds = timed_import(text, profile=args.profile)
    check("first import", result, created=counts, updated={}, unchanged={})
    if result.rows != n_rows:
        raise SystemExit(f"first import: {result.rows} rows read, expected {n_rows}")
    in_db = {
        "agency": Agency.objects.count(),
        "team": SpecialTeam.objects.count(),
        "contact": Contact.objects.count(),
        "membership": TeamMembership.objects.count(),
    }
    if in_db != counts:
        raise SystemExit(f"first import: the database holds {in_db}, expected {counts}")
    print(
        f"first import: {seconds:.2f}s, {n_rows / seconds:,.0f} rows/s, "
        f"{seconds / parse_seconds:.0f}x the parse baseline ({result.summary()})"
    )

    result, reimport_seconds = timed_import(text, profile=args.profile)
    check("re-import", result, created={}, updated={}, unchanged=counts)
    print(f"re-import (unchanged): {reimport_seconds:.2f}s ({result.summary()})")

    result, update_seconds = timed_import(changed_text, profile=args.profile)
    check(
        "update",
        result,
        created={},
        updated={"agency": n_changed},
        unchanged={**counts, "agency": counts["agency"] - n_changed},
    )
    sample = next(r for r, c in zip(rows, changed_rows, strict=True) if r is not c)
    sworn = Agency.objects.get(code=sample["key"]).sworn_officers
    if sworn != sample["sworn_officers"] + 1:
        raise SystemExit(f"update: {sample['key']} has {sworn} sworn officers, expected +1")
    print(f"update ({n_changed:,} agencies changed): {update_seconds:.2f}s ({result.summary()})")

    return {
        "rows": n_rows,
        "agencies": counts["agency"],
        "teams": counts["team"],
        "contacts": counts["contact"],
        "memberships": counts["membership"],
        "seconds": round(seconds, 3),
        "rows_per_s": round(n_rows / seconds, 1),
        "reimport_seconds": round(reimport_seconds, 3),
        "update_seconds": round(update_seconds, 3),
        "updated_agencies": n_changed,
        "parse_seconds": round(parse_seconds, 4),
        "ratio": round(seconds / parse_seconds, 1),
        "database": database.kind,
    }


def main() -> None:
    args = parse_args()
    database = BenchDatabase()
    database.create()
    try:
        os.environ["DJANGO_SETTINGS_MODULE"] = "readiness.settings"
        import django

        django.setup()
        figures = run(args, database)
    finally:
        database.drop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
