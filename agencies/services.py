"""Writes to the registry. Views, commands and the demo loader all call these."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import DatabaseError, transaction
from django.utils import timezone

from readiness import audit
from readiness.bulk import bulk_insert, collector_paused, new

from .importer import ParsedRegistry, RowError, parse_registry_csv
from .models import Agency, Contact, Region, SpecialTeam, TeamMembership, TeamType

AGENCY_FIELDS = (
    "name",
    "kind",
    "region_id",
    "county",
    "city",
    "address",
    "latitude",
    "longitude",
    "sworn_officers",
    "min_home_staffing",
    "active",
)
TEAM_FIELDS = (
    "name",
    "agency_id",
    "team_type_id",
    "level",
    "members",
    "commander_name",
    "commander_phone",
    "notes",
    "active",
)
CONTACT_FIELDS = (
    "name", "title", "email", "phone", "mobile", "channels", "quiet_start", "quiet_end", "role",
    "active",
)  # fmt: skip
BATCH = 1000
PLURALS = {"agency": "agencies", "team": "teams", "contact": "contacts"}
# Keys per IN (...) lookup: SQLite refuses statements with more than 32,766 parameters.
CHUNK = 10_000


def _chunks(items) -> Iterable[list]:
    items = list(items)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _pks_by_key(model, key_field: str, keys) -> dict:
    found = {}
    for chunk in _chunks(keys):
        found.update(
            model.objects.filter(**{f"{key_field}__in": chunk}).values_list(key_field, "pk")
        )
    return found


@dataclass
class ImportResult:
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    dry_run: bool = False
    # Audit records of the rows that changed, written with the import.
    events: list = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return bool(sum(self.created.values()) + sum(self.updated.values()))

    def summary(self) -> str:
        parts = []
        for record, plural in PLURALS.items():
            parts.append(
                f"{plural}: {self.created[record]} created, {self.updated[record]} updated, "
                f"{self.unchanged[record]} unchanged"
            )
        return "; ".join(parts)


class _DryRun(Exception):
    pass


def registry_import(
    *, text: str | Iterable[str], dry_run: bool = False, request=None, source: str = ""
) -> ImportResult:
    """Import agencies, teams and contacts from CSV text: all of it, or nothing.

    Rows are matched by stable keys (agency key, team key, agency + contact email): a new key
    creates, a changed row updates in place, an identical row changes nothing. Rows missing from
    the file are left alone. With any error nothing is written and every bad line is reported.
    """
    with collector_paused():  # a whole registry is hundreds of thousands of objects
        return _import(text=text, dry_run=dry_run, request=request, source=source)


def _import(*, text, dry_run: bool, request, source: str) -> ImportResult:
    parsed = parse_registry_csv(text)
    result = ImportResult(rows=parsed.rows, errors=list(parsed.errors), dry_run=dry_run)
    if parsed.errors:
        return result
    try:
        with transaction.atomic():
            _write(parsed, result, request)
            if dry_run:
                raise _DryRun
            if result.changed:
                counts = {
                    f"{PLURALS[record]} {what}": getattr(result, what)[record]
                    for record in PLURALS
                    for what in ("created", "updated")
                    if getattr(result, what)[record]
                }
                result.events.append(
                    audit.event(
                        "registry.import",
                        request=request,
                        object_repr=source[:300],
                        changes={"rows": result.rows, **counts},
                    )
                )
                audit.record_many(result.events)
    except _DryRun:
        pass
    except DatabaseError as exc:
        # The checks above mirror every constraint; this is a concurrent edit or a gap in them.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result.errors.append(
            RowError(
                0,
                f"the database refused the import ({reason}), so nothing was written. "
                "Another import or edit may have changed the registry meanwhile: try again.",
            )
        )
        result.created.clear()
        result.updated.clear()
        result.unchanged.clear()
    return result


def _readable(values: dict, labels: dict[str, dict]) -> dict:
    """Field values for the audit trail: region/team type/agency by name or key, not by id."""
    return {
        name.removesuffix("_id"): labels[name].get(value, value) if name in labels else value
        for name, value in values.items()
    }


def _upsert(
    model, key_field, rows, fields, existing, result, record, request, labels, touched=None
):
    """Create new rows and update changed ones; return {key: pk} for every row in `rows`.

    `touched` maps keys to changes made outside these fields (a team's member agencies): such
    rows count as updated even when their own fields are unchanged. `labels` maps foreign-key
    fields to {id: readable name} for the audit trail.
    """
    touched = touched or {}
    now = timezone.now()
    to_create, to_update = [], []
    for key, values in rows.items():
        obj = existing.get(key)
        if obj is None:
            to_create.append(new(model, **{key_field: key}, **{f: values[f] for f in fields}))
            continue
        before = {f: getattr(obj, f) for f in fields if getattr(obj, f) != values[f]}
        if key in touched or before:
            for f in fields:
                setattr(obj, f, values[f])
            obj.updated_at = now
            to_update.append(obj)
            after = {f: values[f] for f in before}
            changes = {
                **audit.diff(_readable(before, labels), _readable(after, labels)),
                **touched.get(key, {}),
            }
            result.events.append(
                audit.event(f"{record}.update", request=request, obj=obj, changes=changes)
            )
        else:
            result.unchanged[record] += 1
    bulk_insert(model, to_create)  # COPY on PostgreSQL; the ids are read back by key below
    if to_update:
        model.objects.bulk_update(to_update, [*fields, "updated_at"], batch_size=BATCH)
    result.created[record] += len(to_create)
    result.updated[record] += len(to_update)
    pks = _pks_by_key(model, key_field, rows)
    result.events += [
        audit.event(
            f"{record}.create",
            request=request,
            object_type=model._meta.model_name,
            object_id=pks[getattr(obj, key_field)],
            object_repr=str(obj),
            changes=audit.diff(
                {},
                _readable({f: getattr(obj, f) for f in (key_field, *fields)}, labels),
            ),
        )
        for obj in to_create
    ]
    return pks


def _write(parsed: ParsedRegistry, result: ImportResult, request) -> None:
    labels = {
        "region_id": dict(Region.objects.values_list("pk", "name")),
        "team_type_id": dict(TeamType.objects.values_list("pk", "code")),
        "agency_id": {},  # filled in below, once the agencies have ids
    }
    agencies = Agency.objects.select_for_update().in_bulk(list(parsed.agencies), field_name="code")
    agency_ids = _upsert(
        Agency, "code", parsed.agencies, AGENCY_FIELDS, agencies, result, "agency", request, labels
    )
    referenced = {t["agency"] for t in parsed.teams.values()}
    referenced |= {code for t in parsed.teams.values() for code in t["memberships"]}
    referenced |= {agency for agency, _ in parsed.contacts}
    missing = referenced - agency_ids.keys()
    agency_ids.update(_pks_by_key(Agency, "code", missing))
    labels["agency_id"] = {pk: code for code, pk in agency_ids.items()}
    _write_teams(parsed, agency_ids, result, request, labels)
    _write_contacts(parsed, labels["agency_id"], agency_ids, result, request)


def _write_teams(parsed: ParsedRegistry, agency_ids: dict[str, int], result, request, labels):
    if not parsed.teams:
        return
    want: dict[str, dict[int, int]] = {}
    for code, values in parsed.teams.items():
        values["agency_id"] = agency_ids[values["agency"]]
        want[code] = {agency_ids[a]: officers for a, officers in values["memberships"].items()}
    teams = SpecialTeam.objects.select_for_update().in_bulk(list(parsed.teams), field_name="code")
    have: dict[int, dict[int, TeamMembership]] = {}
    for chunk in _chunks(t.pk for t in teams.values()):
        for m in TeamMembership.objects.filter(team_id__in=chunk):
            have.setdefault(m.team_id, {})[m.agency_id] = m
    # A team whose only change is its member agencies counts as updated, not unchanged.
    codes = labels["agency_id"]
    gone = {a for team in have.values() for a in team} - codes.keys()
    codes |= dict(Agency.objects.filter(pk__in=gone).values_list("pk", "code"))

    def listed(members: dict[int, int]) -> str:
        return "; ".join(sorted(f"{codes[a]}:{n}" for a, n in members.items()))

    members_changed = {}
    for code, team in teams.items():
        current = {a: m.officers for a, m in have.get(team.pk, {}).items()}
        if current != want[code]:
            members_changed[code] = {"member_agencies": [listed(current), listed(want[code])]}
    team_ids = _upsert(
        SpecialTeam, "code", parsed.teams, TEAM_FIELDS, teams, result, "team", request, labels,
        members_changed,
    )  # fmt: skip
    to_create, to_update, to_delete = [], [], []
    for code, wanted in want.items():
        team_id = team_ids[code]
        current = have.get(team_id, {})
        for agency_id, officers in wanted.items():
            membership = current.get(agency_id)
            if membership is None:
                to_create.append(new(TeamMembership, team_id=team_id, agency_id=agency_id,
                                          officers=officers))  # fmt: skip
            elif membership.officers != officers:
                membership.officers = officers
                to_update.append(membership)
        to_delete += [m.pk for agency_id, m in current.items() if agency_id not in wanted]
    for chunk in _chunks(to_delete):
        TeamMembership.objects.filter(pk__in=chunk).delete()
    TeamMembership.objects.bulk_update(to_update, ["officers"], batch_size=BATCH)
    bulk_insert(TeamMembership, to_create)


def _write_contacts(parsed: ParsedRegistry, codes_by_id, agency_ids, result, request) -> None:
    if not parsed.contacts:
        return
    rows = {
        (agency_ids[agency], email): values for (agency, email), values in parsed.contacts.items()
    }
    existing = {}
    for chunk in _chunks({agency_id for agency_id, _ in rows}):
        for c in Contact.objects.select_for_update().filter(agency_id__in=chunk):
            existing[(c.agency_id, c.email.lower())] = c
    now = timezone.now()
    to_create, demote, to_update = [], [], []
    for (agency_id, email), values in rows.items():
        contact = existing.get((agency_id, email))
        if contact is None:
            to_create.append(new(Contact, agency_id=agency_id, **values))
            continue
        before = {
            f: getattr(contact, f) for f in CONTACT_FIELDS if getattr(contact, f) != values[f]
        }
        if not before:
            result.unchanged["contact"] += 1
            continue
        result.events.append(
            audit.event(
                "contact.update",
                request=request,
                object_type="contact",
                object_id=contact.pk,
                object_repr=f"{values['name']} <{values['email']}>",
                changes=audit.diff(before, {f: values[f] for f in before}),
            )
        )
        # Demote old primaries before promoting new ones: the one-primary-per-agency index is
        # checked row by row, so a swap done in one statement could trip it.
        was_primary = contact.role == Contact.Role.PRIMARY
        for f in CONTACT_FIELDS:
            setattr(contact, f, values[f])
        contact.updated_at = now
        if was_primary and contact.role != Contact.Role.PRIMARY:
            demote.append(contact)
        else:
            to_update.append(contact)
    for batch in (demote, to_update):
        Contact.objects.bulk_update(batch, [*CONTACT_FIELDS, "updated_at"], batch_size=BATCH)
    bulk_insert(Contact, to_create)
    result.events += [
        audit.event(
            "contact.create",
            request=request,
            object_type="contact",
            object_repr=f"{c.name} <{c.email}>",
            changes={"agency": codes_by_id[c.agency_id], "role": c.role},
        )
        for c in to_create
    ]
    result.created["contact"] += len(to_create)
    result.updated["contact"] += len(demote) + len(to_update)
