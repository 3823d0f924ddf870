"""The demo registry: real Illinois agencies (see demo/README.md) with synthetic teams and contacts.

Everything is generated deterministically and written through the same CSV import that
coordinators use, so loading it twice changes nothing.
"""

import csv
import io
import random
from pathlib import Path

from django.utils.text import slugify

from . import services
from .importer import COLUMNS
from .models import Region

DATA = Path(__file__).parent / "demo" / "illinois_agencies.csv"
SYNTHETIC = "Synthetic demo data: not a real team."
REGION_DESCRIPTIONS = {
    "Chicago": "The City of Chicago, a mutual-aid region of its own.",
}
FIRST = "Alex Jordan Morgan Casey Taylor Riley Jamie Avery Quinn Dana Robin Drew Lee Pat".split()
LAST = (
    "Novak Kowalski Rivera Okafor Lindqvist Brennan Haddad Moreno Fischer Nguyen Delgado Walsh "
    "Sorensen Jablonski Mbeki Castillo Horvath Duffy Petrov Ramirez"
).split()
CHIEF_TITLE = {
    "municipal": "Chief of Police",
    "sheriff": "Sheriff",
    "state": "Colonel",
    "university": "Chief of Police",
}


def agency_key(name: str) -> str:
    return slugify(name)[:64]


def read_agencies() -> list[dict]:
    with DATA.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ensure_regions(agencies: list[dict]) -> None:
    for name in sorted({a["region"] for a in agencies}):
        Region.objects.get_or_create(
            name=name,
            defaults={
                "description": REGION_DESCRIPTIONS.get(
                    name, "Synthetic grouping of counties for demonstration; not official."
                )
            },
        )


def build_rows(agencies: list[dict]) -> list[dict]:
    """Agency, team and contact rows for the registry import, in a stable order."""
    rng = random.Random(2021)  # fixed seed: the same demo registry on every machine
    rows: list[dict] = []
    by_region: dict[str, list[dict]] = {}
    for a in agencies:
        sworn = int(a["sworn_estimate"])
        rows.append(
            {
                "record": "agency",
                "key": agency_key(a["name"]),
                "name": a["name"],
                "kind": a["kind"],
                "region": a["region"],
                "county": a["county"],
                "city": a["city"],
                "latitude": a["latitude"],
                "longitude": a["longitude"],
                "sworn_officers": sworn,
                "min_home_staffing": round(sworn * 0.6),
            }
        )
        by_region.setdefault(a["region"], []).append(a)

    def team(agency, type_code, level, members, suffix, name=None, member_agencies=""):
        key = agency_key(agency["name"])
        short = (
            agency["name"].replace(" Police Department", " PD").replace(" Sheriff's Office", " SO")
        )
        rows.append(
            {
                "record": "team",
                "key": f"{key}-{suffix}"[:64],
                "agency": key,
                "name": name or f"{short} {suffix.upper()}",
                "team_type": type_code,
                "level": level or "",
                "members": members,
                "member_agencies": member_agencies,
                "commander_name": f"Lt. {rng.choice(FIRST)} {rng.choice(LAST)}",
                "commander_phone": f"(217) 555-01{rng.randrange(100):02d}",
                "notes": SYNTHETIC,
            }
        )

    for a in agencies:
        sworn = int(a["sworn_estimate"])
        if a["kind"] == "state" or sworn >= 1000:
            team(a, "swat", 1, 60 if sworn > 5000 else 40, "swat")
            team(a, "mff", 1, 120 if sworn > 5000 else 60, "mff")
            team(a, "bomb", 1, 12 if sworn > 5000 else 8, "bomb")
            team(a, "negotiation", 1, 10, "cnt")
            team(a, "suas", 1, 6, "suas")
            team(a, "k9", 1, 8, "k9")
            team(a, "dive", 1, 12, "dive")
            continue
        if sworn >= 150:
            team(a, "swat", 2, rng.randint(19, 26), "srt")
            team(a, "k9", 1, rng.randint(2, 4), "k9")
            if rng.random() < 0.4:
                team(a, "bomb", rng.choice((2, 3)), 2 + rng.randrange(3), "bomb")
            if rng.random() < 0.5:
                team(a, "negotiation", 2, rng.randint(3, 6), "cnt")
        elif sworn >= 90:
            team(a, "swat", 3, rng.randint(15, 19), "srt")
            if rng.random() < 0.5:
                team(a, "k9", 1, rng.randint(1, 2), "k9")
        elif sworn >= 50 and rng.random() < 0.35:
            team(a, "k9", 1, 1, "k9")
        if a["kind"] == "sheriff" and sworn >= 40 and rng.random() < 0.3:
            team(a, "dive", 4 if sworn < 80 else 3, rng.randint(6, 10), "dive")
        if sworn >= 70 and rng.random() < 0.15:
            team(a, "suas", 1, 3, "suas")

    # A multi-agency mobile field force per region outside Chicago, hosted by its largest
    # agency, and a multi-agency SRT of its smaller municipal departments.
    for region, members in sorted(by_region.items()):
        if region == "Chicago" or len(members) < 6:
            continue
        ranked = sorted(members, key=lambda a: -int(a["sworn_estimate"]))
        host, others = ranked[0], ranked[1:]
        contributors = rng.sample(others, k=min(8, len(others)))
        shares = {agency_key(c["name"]): rng.randint(3, 8) for c in contributors}
        total = sum(shares.values()) + rng.randint(8, 14)
        team(
            host,
            "mff",
            1 if total >= 56 else 2,
            total,
            "region-mff",
            name=f"{region.split(' - ')[0]} Mobile Field Force",
            member_agencies="; ".join(f"{k}:{v}" for k, v in sorted(shares.items())),
        )
        small = [a for a in others if a["kind"] == "municipal" and int(a["sworn_estimate"]) < 90]
        if len(small) >= 4:
            srt_host, *srt_members = sorted(
                rng.sample(small, k=min(5, len(small))), key=lambda a: a["name"]
            )
            shares = {agency_key(m["name"]): rng.randint(2, 4) for m in srt_members}
            team(
                srt_host,
                "swat",
                3,
                sum(shares.values()) + rng.randint(4, 6),
                "region-srt",
                name=f"{region.split(' - ')[0]} Multi-Agency SRT",
                member_agencies="; ".join(f"{k}:{v}" for k, v in sorted(shares.items())),
            )

    for i, a in enumerate(agencies):
        if i % 70 == 69:
            continue  # a few agencies without contacts, as in a real registry
        key = agency_key(a["name"])
        domain = f"{key[:40].strip('-')}.example"
        for role, title in (("primary", CHIEF_TITLE[a["kind"]]), ("alternate", "Lieutenant")):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            if role == "alternate" and int(a["sworn_estimate"]) < 40:
                continue
            rows.append(
                {
                    "record": "contact",
                    "agency": key,
                    "name": f"{first} {last}",
                    "title": title,
                    "email": f"{first}.{last}.{role}@{domain}".lower(),
                    "phone": f"(312) 555-01{rng.randrange(100):02d}",
                    # Fictional (555-01xx); derived from the position, not the random stream.
                    "mobile": f"(630) 555-01{(i * 2 + (role == 'alternate')) % 100:02d}",
                    "contact_role": role,
                }
            )
    return rows


def rows_to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="raise")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def load_demo_registry() -> services.ImportResult:
    agencies = read_agencies()
    ensure_regions(agencies)
    return services.registry_import(text=rows_to_csv(build_rows(agencies)), source="demo data")
