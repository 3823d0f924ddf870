"""Team rosters: the people on a special team, their qualifications and expiry dates. Kept by
the team's agency's commander (and coordinators where ROSTER_NAMES_TO_COORDINATORS allows), one
at a time or by CSV (all or nothing, every bad line reported). A team with a roster takes its
size from it. Every change is audited."""

import csv
import datetime
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from readiness import audit

from .importer import FALSE_WORDS, TRUE_WORDS, RowError
from .models import Agency, MemberQualification, Qualification, SpecialTeam, TeamMember
from .phones import to_e164

MEMBER_FIELDS = ("name", "rank", "agency", "email", "mobile", "home_base", "is_leader", "active")
ROSTER_COLUMNS = ("name", "rank", "agency", "email", "mobile", "home_base", "leader",
                  "qualifications", "active")  # fmt: skip
QUALIFICATION_ITEM = re.compile(r"^(?P<code>[a-z0-9][a-z0-9-]*)(?:\s*:\s*(?P<date>\S+))?$")


def team_agencies(team: SpecialTeam) -> dict[str, Agency]:
    """The agencies a member of this team may belong to, by key: the host and its members."""
    agencies = {team.agency.code: team.agency}
    agencies.update({m.agency.code: m.agency for m in team.memberships.select_related("agency")})
    return agencies


def parse_qualifications(text: str, *, today: datetime.date) -> tuple[list, list[str]]:
    """'swat-cert:2027-06-30; crowd-control' -> [(Qualification, date or None)], problems."""
    known = {q.code: q for q in Qualification.objects.all()}
    found, problems, seen = [], [], set()
    for item in filter(None, (part.strip().lower() for part in re.split(r"[;,]", text or ""))):
        match = QUALIFICATION_ITEM.match(item)
        if not match or match["code"] not in known:
            problems.append(f"unknown qualification {item!r} (known: {', '.join(sorted(known))})")
            continue
        expires = None
        if match["date"]:
            try:
                expires = datetime.date.fromisoformat(match["date"])
            except ValueError:
                problems.append(f"{match['code']}: expiry {match['date']!r} is not a date "
                                "(YYYY-MM-DD)")  # fmt: skip
                continue
            if expires < today:
                problems.append(f"{match['code']} expired on {expires}: renew it or leave it out")
                continue
        if match["code"] in seen:
            problems.append(f"{match['code']} is listed twice")
            continue
        seen.add(match["code"])
        found.append((known[match["code"]], expires))
    return found, problems


def qualifications_text(member: TeamMember) -> str:
    return "; ".join(
        f"{q.qualification.code}:{q.expires_on}" if q.expires_on else q.qualification.code
        for q in member.qualifications.all()
    )


def sync_team_size(team: SpecialTeam) -> None:
    """A team with a roster counts its active members."""
    count = team.roster.filter(active=True).count()
    if count and count != team.members:
        SpecialTeam.objects.filter(pk=team.pk).update(members=count, updated_at=timezone.now())
        team.members = count


def _set_qualifications(member: TeamMember, qualifications: list) -> None:
    MemberQualification.objects.filter(member=member).delete()
    MemberQualification.objects.bulk_create(
        MemberQualification(member=member, qualification=q, expires_on=d) for q, d in qualifications
    )


@transaction.atomic
def member_save(member: TeamMember, before: dict, qualifications: list, *, request) -> dict:
    """Save a member (new or edited) with their qualifications, audited, and the team's size."""
    created = member.pk is None
    before_quals = qualifications_text(member) if not created else ""
    member.save()
    _set_qualifications(member, qualifications)
    after = {f: getattr(member, f) for f in MEMBER_FIELDS}
    changes = audit.diff(before, after)
    now_quals = qualifications_text(member)
    if now_quals != before_quals:
        changes["qualifications"] = [before_quals, now_quals]
    if created or changes:
        audit.record(
            f"teammember.{'create' if created else 'update'}", request=request, obj=member,
            object_repr=f"member of {member.team}",  # names stay out of the audit's listing
            changes={**changes, "team": member.team.code},
        )  # fmt: skip
    sync_team_size(member.team)
    return changes


@dataclass
class RosterImport:
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


class _DryRun(Exception):
    pass


def roster_import(*, team: SpecialTeam, text: str, request, dry_run: bool = False) -> RosterImport:
    """A team's roster from CSV: each row creates or updates the member with that name (and
    agency); members not in the file are left as they are. All or nothing."""
    result = RosterImport(dry_run=dry_run)
    today = timezone.localdate()
    agencies = team_agencies(team)
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in ("name",) if c not in (reader.fieldnames or [])]
    unknown = [c for c in (reader.fieldnames or []) if c not in ROSTER_COLUMNS]
    if missing or unknown:
        result.errors.append(
            RowError(
                1,
                f"columns: the header needs a name column and may have "
                f"{', '.join(ROSTER_COLUMNS)}; missing {missing or 'none'}, "
                f"unknown {unknown or 'none'}",
            )
        )
        return result
    rows, seen = [], {}
    for line, raw in enumerate(reader, start=2):
        result.rows += 1
        row = {k: (v or "").strip() for k, v in raw.items() if k}
        problems = []
        name = " ".join(row.get("name", "").split())
        if not name:
            problems.append("missing name")
        agency = agencies.get((row.get("agency") or team.agency.code).lower())
        if agency is None:
            problems.append(
                f"agency {row.get('agency')!r} is not on this team (its agencies: "
                f"{', '.join(sorted(agencies))})"
            )
        email = row.get("email", "")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append(f"email {email!r} is not a valid address")
        try:
            mobile = to_e164(row.get("mobile", ""))
        except ValueError as exc:
            mobile = ""
            problems.append(f"mobile {exc}")
        flags = {}
        for column, default in (("leader", False), ("active", True)):
            value = row.get(column, "").lower()
            if value not in TRUE_WORDS | FALSE_WORDS:
                problems.append(f"{column} {value!r} must be true or false")
            flags[column] = default if value == "" else value in TRUE_WORDS
        quals, qual_problems = parse_qualifications(row.get("qualifications", ""), today=today)
        problems += qual_problems
        key = (name.lower(), agency.pk if agency else None)
        if name and key in seen:
            problems.append(f"duplicate member {name!r} (first on line {seen[key]})")
        seen.setdefault(key, line)
        for problem in problems:
            result.errors.append(RowError(line, problem))
        values = {"name": name[:150], "rank": row.get("rank", "")[:100], "agency": agency,
                  "email": email, "mobile": mobile, "home_base": row.get("home_base", "")[:200],
                  "is_leader": flags["leader"], "active": flags["active"]}  # fmt: skip
        rows.append((key, values, quals))
    if result.rows > TeamMember.MAX_PER_TEAM:
        result.errors.append(RowError(0, f"at most {TeamMember.MAX_PER_TEAM:,} members a team"))
    if result.errors:
        return result
    try:
        with transaction.atomic():
            _write_roster(team, rows, result, request)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return result


def _write_roster(team, rows, result: RosterImport, request) -> None:
    existing = {
        (m.name.lower(), m.agency_id): m
        for m in team.roster.select_for_update().prefetch_related("qualifications__qualification")
    }
    for key, values, quals in rows:
        member = existing.get(key)
        if member is None:
            member_save(TeamMember(team=team, **values), {}, quals, request=request)
            result.created += 1
            continue
        before = {f: getattr(member, f) for f in MEMBER_FIELDS}
        for name, value in values.items():
            setattr(member, name, value)
        wanted = "; ".join(f"{q.code}:{d}" if d else q.code for q, d in quals)
        if before == {f: getattr(member, f) for f in MEMBER_FIELDS} and wanted == (
            qualifications_text(member)
        ):
            result.unchanged += 1
            continue
        member_save(member, before, quals, request=request)
        result.updated += 1
    audit.record("roster.import", request=request, obj=team,
                 changes={"rows": result.rows, "created": result.created,
                          "updated": result.updated})  # fmt: skip
