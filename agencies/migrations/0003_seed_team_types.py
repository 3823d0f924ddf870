"""Seed the NIMS-style law-enforcement team types and their typed levels.

Minimum personnel per type from FEMA's Resource Typing Library (2025 definitions). Rows that
already exist (matched by code and level) are left as they are, so edits made in the admin
survive, and reverse removes nothing a user may depend on.
"""

from django.db import migrations

TEAM_TYPES = [
    # code, name, description, {level: (min personnel, description)}
    (
        "swat",
        "SWAT / Special Response Team",
        "Tactical team for high-risk warrants, barricades, hostage rescue and active threats.",
        {1: (26, ""), 2: (19, ""), 3: (15, "")},
    ),
    (
        "mff",
        "Mobile Field Force",
        "Crowd management and civil-disturbance team of officers, supervisors and support.",
        {1: (56, ""), 2: (27, "")},
    ),
    (
        "bomb",
        "Bomb squad",
        "Bomb response team. Two certified bomb technicians at every type; "
        "only Type 1 renders safe in CBRNE incidents.",
        {
            1: (2, "Renders safe in CBRNE incidents"),
            2: (2, ""),
            3: (2, ""),
            4: (2, ""),
        },
    ),
    (
        "k9",
        "Explosives detection K9",
        "Explosives detection canine team: one handler and the dog.",
        {1: (1, "One handler and one dog")},
    ),
    (
        "dive",
        "Public safety dive team",
        "Underwater search, recovery and evidence team.",
        {1: (9, ""), 2: (9, ""), 3: (9, ""), 4: (6, "")},
    ),
    (
        "negotiation",
        "Crisis negotiation team",
        "Negotiators for barricade, hostage and suicide-intervention incidents.",
        {1: (6, ""), 2: (3, "")},
    ),
    (
        "suas",
        "sUAS team",
        "Small unmanned aircraft systems: remote pilots and visual observers.",
        {1: (3, "")},
    ),
    (
        "patrol",
        "Patrol team",
        "Law-enforcement patrol team for general policing of an affected area.",
        {1: (86, ""), 2: (57, ""), 3: (28, ""), 4: (12, "")},
    ),
]

COMMON = (
    "Typed deployments are planned as self-sustaining for 72 hours, 12-hour shifts, up to 14 days."
)


def seed(apps, schema_editor):
    TeamType = apps.get_model("agencies", "TeamType")
    TeamTypeLevel = apps.get_model("agencies", "TeamTypeLevel")
    for order, (code, name, description, levels) in enumerate(TEAM_TYPES, start=1):
        team_type, _ = TeamType.objects.get_or_create(
            code=code,
            defaults={"name": name, "description": f"{description} {COMMON}", "sort_order": order},
        )
        for level, (min_personnel, level_description) in levels.items():
            TeamTypeLevel.objects.get_or_create(
                team_type=team_type,
                level=level,
                defaults={"min_personnel": min_personnel, "description": level_description},
            )


class Migration(migrations.Migration):
    dependencies = [("agencies", "0002_registry_relations")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
