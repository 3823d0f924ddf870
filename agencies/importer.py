"""Parse and validate a registry CSV (agencies, teams and contacts in one file).

The whole file is checked before anything is written: `parse_registry_csv` returns the rows it
understood and every error with its line number. `agencies.services.registry_import` writes the
rows only when there is no error at all. The columns are documented in docs/registry-import.md.
"""

import csv
import datetime
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .models import (
    MAX_SWORN_OFFICERS,
    Agency,
    Contact,
    Region,
    SpecialTeam,
    TeamType,
    TeamTypeLevel,
)
from .phones import to_e164

RECORD_TYPES = ("agency", "team", "contact")
REQUIRED_COLUMNS = ("record", "key", "agency", "name")
OPTIONAL_COLUMNS = (
    "kind",
    "region",
    "county",
    "city",
    "address",
    "latitude",
    "longitude",
    "sworn_officers",
    "min_home_staffing",
    "team_type",
    "level",
    "members",
    "member_agencies",
    "commander_name",
    "commander_phone",
    "notes",
    "title",
    "email",
    "phone",
    "mobile",
    "channels",
    "quiet_hours",
    "contact_role",
    "active",
)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Shown on the upload page; docs/registry-import.md has the long version.
COLUMN_HELP = (
    ("record", "all", "agency, team or contact"),
    ("key", "agency, team", "stable key: letters, digits, - or _ (max 64)"),
    ("agency", "team, contact", "key of the host agency / the contact's agency"),
    ("name", "all", "agency, team or person name"),
    ("kind", "agency", "municipal, sheriff, state, university or other"),
    ("region", "agency", "name of an existing region"),
    ("county, city, address", "agency", "optional"),
    ("latitude, longitude", "agency", "decimal degrees (required)"),
    ("sworn_officers, min_home_staffing", "agency", "whole numbers ≥ 0; home ≤ sworn"),
    ("team_type", "team", "code or name, e.g. swat, mff, bomb, k9, dive, negotiation, suas"),
    ("level", "team", "NIMS type the team type has; blank if untyped"),
    ("members", "team", "officers on the team, all agencies together (≥ 1)"),
    ("member_agencies", "team", "key:officers; key:officers (all members; host supplies the rest)"),
    ("commander_name, commander_phone, notes", "team", "optional"),
    ("title, email, phone", "contact", "email required"),
    ("mobile", "contact", "for texts: +1 312 555 0100, or a US number without +1"),
    ("channels", "contact", "email, sms or both (blank: email); sms needs a mobile"),
    ("quiet_hours", "contact", "HH:MM-HH:MM local, e.g. 22:00-07:00 (blank: none)"),
    ("contact_role", "contact", "primary or alternate (blank: alternate); one primary per agency"),
    ("active", "all", "true or false (blank: true)"),
)
QUIET_RE = re.compile(r"^(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})$")
KEY_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
# Bounds on numbers, well beyond any real agency or team and well inside the columns' range:
# a typo of a few extra digits is an error on its line, not a database failure.
MAX_TEAM_MEMBERS = SpecialTeam.MAX_MEMBERS
MAX_LEVEL = 9
# The longest value the parser reads; longer ones are an error on their line (the columns' own
# limits are much shorter and checked per column).
MAX_FIELD_CHARS = 1_000_000
csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
TRUE_WORDS = {"", "true", "yes", "y", "1"}
FALSE_WORDS = {"false", "no", "n", "0"}


def _max_lengths(model, *names: str) -> dict[str, int]:
    """Column limits taken from the model, so the import refuses what the database would."""
    return {name: model._meta.get_field(name).max_length for name in names}


MAX_LENGTHS = {
    "agency": _max_lengths(Agency, "name", "county", "city", "address"),
    "team": _max_lengths(SpecialTeam, "name", "commander_name", "commander_phone"),
    "contact": _max_lengths(Contact, "name", "title", "email", "phone"),
}


@dataclass(frozen=True)
class RowError:
    line: int  # 1 is the header; 0 is the file as a whole
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class ParsedRegistry:
    """What the file says, keyed by stable keys, ready to be written."""

    agencies: dict[str, dict] = field(default_factory=dict)  # code -> fields
    teams: dict[str, dict] = field(default_factory=dict)  # code -> fields (+ memberships)
    contacts: dict[tuple[str, str], dict] = field(default_factory=dict)  # (agency, email) -> fields
    # (record, key) -> line of the first row with that key; also ("agency-name", name) and
    # ("team-name", (agency, name)) for the names that must be unique.
    lines: dict[tuple[str, object], int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0


class _RowProblems(Exception):
    def __init__(self, messages: list[str]):
        self.messages = messages


class _Row:
    """One CSV row with helpers that collect every problem instead of stopping at the first."""

    def __init__(self, record: str, values: dict[str, str]):
        self.limits = MAX_LENGTHS.get(record, {})
        self.problems: list[str] = []
        self.values = values
        # PostgreSQL cannot store a NUL character in text: say where it is, write nothing.
        # Looked for in the row at once (a registry of 71,000 rows has 2 million values).
        if "\x00" in "".join(values.values()):
            for column, value in values.items():
                if "\x00" in value:
                    self.problems.append(f"{column} contains a NUL character (byte 0): remove it")
            self.values = {column: value.replace("\x00", "") for column, value in values.items()}

    def text(self, column: str, *, required: bool = False) -> str:
        value = self.values.get(column, "")
        if required and not value:
            self.problems.append(f"missing {column}")
        limit = self.limits.get(column)
        if limit and len(value) > limit:
            self.problems.append(f"{column} is longer than {limit} characters")
        return value

    def key(self, column: str) -> str:
        """A stable key: case does not matter (AURORA-PD and aurora-pd are one key), so keys are
        kept in lower case."""
        value = self.text(column, required=True)
        if value and not KEY_RE.match(value):
            self.problems.append(
                f"{column} {value!r} must be 1-64 letters, digits, hyphens or underscores"
            )
        return value.lower()

    def integer(
        self, column: str, *, default: int | None, minimum: int, maximum: int
    ) -> int | None:
        raw = self.values.get(column, "")
        if raw == "":
            if default is None:
                self.problems.append(f"missing {column}")
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{column} {raw!r} is not a whole number")
            return default
        if value < minimum:
            what = "negative" if minimum == 0 else f"less than {minimum}"
            self.problems.append(f"{column} {value} is {what}")
        elif value > maximum:
            self.problems.append(f"{column} {value} is more than {maximum:,}")
            return None
        return value

    def coordinate(self, column: str, limit: float) -> float | None:
        raw = self.values.get(column, "")
        if raw == "":
            self.problems.append(f"missing {column}")
            return None
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"bad coordinates: {column} {raw!r} is not a number")
            return None
        if not -limit <= value <= limit:  # also rejects nan
            self.problems.append(f"bad coordinates: {column} {raw} is outside -{limit}..{limit}")
            return None
        return value

    def quiet_hours(self, column: str) -> tuple[datetime.time | None, datetime.time | None]:
        raw = self.values.get(column, "").replace(" ", "")
        if not raw:
            return None, None
        match = QUIET_RE.match(raw)
        try:
            start, end = (
                datetime.time(int(match[h]), int(match[m])) for h, m in (("h1", "m1"), ("h2", "m2"))
            )
        except (TypeError, ValueError):  # no match, or 25:00
            self.problems.append(f"{column} {raw!r} must be HH:MM-HH:MM, e.g. 22:00-07:00")
            return None, None
        if start == end:
            self.problems.append(f"{column} {raw!r} starts and ends at the same time")
            return None, None
        return start, end

    def boolean(self, column: str) -> bool:
        raw = self.values.get(column, "").lower()
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        self.problems.append(f"{column} {raw!r} must be true or false")
        return True

    def choice(self, column: str, choices, *, default: str | None = None) -> str:
        raw = self.values.get(column, "").lower()
        if raw == "" and default is not None:
            return default
        if raw == "":
            self.problems.append(f"missing {column}")
            return raw
        if raw not in choices.values:
            self.problems.append(
                f"unknown {column} {raw!r} (expected one of: {', '.join(choices.values)})"
            )
        return raw


def read_csv_text(data: bytes) -> str:
    """Decode an uploaded file: UTF-8, with or without the BOM spreadsheets add."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"The file is not UTF-8 text (byte {exc.start}). Save it as 'CSV UTF-8' and retry."
        ) from None


def _records(text: str | Iterable[str]):
    """Yield (first line number, row dict) for each non-blank row, after checking the header."""
    stream = io.StringIO(text, newline="") if isinstance(text, str) else text
    # strict: a quote left open is an error at the end of the file, not a silent swallow of
    # every row after it; each error is reported on its line and reading goes on.
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise _RowProblems(["the file is empty: expected a header row"]) from None
    except csv.Error as exc:
        raise _RowProblems([f"the header row is not valid CSV: {exc}"]) from None
    names = [h.strip().lower() for h in header]
    problems = []
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    unknown = [n for n in names if n and n not in COLUMNS]
    if unknown:
        problems.append(
            f"unknown column(s) {', '.join(unknown)} (see docs/registry-import.md for the columns)"
        )
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    if duplicated:
        problems.append(f"repeated column(s) {', '.join(duplicated)}")
    if problems:
        raise _RowProblems(problems)
    last_line = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            first_line, last_line = last_line + 1, reader.line_num
            yield first_line, ValueError(_csv_problem(exc, first_line))
            continue
        first_line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            yield first_line, ValueError(f"{len(row)} values but the header has {len(names)}")
            continue
        yield first_line, {n: v.strip() for n, v in zip(names, row, strict=False) if n}


def _csv_problem(exc: csv.Error, line: int) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return (
            f"unterminated quote starting on line {line}: a quoted value never ends, so the "
            "rest of the file was read as one value (close the quote, or remove it)"
        )
    if "field larger than field limit" in text:
        return f"a value is longer than {MAX_FIELD_CHARS:,} characters"
    return text


class _Lookups:
    """What the database already holds, loaded once per import."""

    def __init__(self):
        self.regions = {name.lower(): pk for pk, name in Region.objects.values_list("pk", "name")}
        self.team_types = {}
        for pk, code, name in TeamType.objects.values_list("pk", "code", "name"):
            self.team_types[code.lower()] = pk
            self.team_types[name.lower()] = pk
        self.levels = set(TeamTypeLevel.objects.values_list("team_type_id", "level"))
        self.agency_codes_by_name = {
            name.lower(): code for code, name in Agency.objects.values_list("code", "name")
        }
        self.agency_codes = set(self.agency_codes_by_name.values())
        self.team_codes_by_name = {
            (agency_code, name.lower()): code
            for code, agency_code, name in SpecialTeam.objects.values_list(
                "code", "agency__code", "name"
            )
        }
        self.primary_emails = {
            code: email.lower()
            for code, email in Contact.objects.filter(role=Contact.Role.PRIMARY).values_list(
                "agency__code", "email"
            )
        }


def parse_registry_csv(text: str | Iterable[str]) -> ParsedRegistry:
    parsed = ParsedRegistry()
    try:
        records = list(_records(text))
    except _RowProblems as exc:
        parsed.errors.extend(RowError(1, m) for m in exc.messages)
        return parsed
    db = _Lookups()
    # Agencies first, so teams and contacts may refer to agencies defined anywhere in the file.
    ordered = sorted(
        records,
        key=lambda r: (
            0 if isinstance(r[1], dict) and r[1].get("record", "").lower() == "agency" else 1,
            r[0],
        ),
    )
    for line, values in ordered:
        parsed.rows += 1
        if isinstance(values, Exception):
            parsed.errors.append(RowError(line, f"not valid CSV: {values}"))
            continue
        record = values.get("record", "").lower()
        row = _Row(record, values)
        if record not in RECORD_TYPES:
            parsed.errors.append(
                RowError(
                    line,
                    f"unknown record {record!r} (expected agency, team or contact)"
                    if record
                    else "missing record (expected agency, team or contact)",
                )
            )
            continue
        {"agency": _agency, "team": _team, "contact": _contact}[record](row, line, parsed, db)
        if row.problems:
            parsed.errors.append(RowError(line, "; ".join(row.problems)))
    _check_primaries(parsed, db)
    parsed.errors.sort(key=lambda e: e.line)
    return parsed


def _known_agency(code: str, parsed: ParsedRegistry, db: _Lookups) -> bool:
    # A bad agency row is reported on its own line; rows that refer to it are not blamed too.
    return ("agency", code) in parsed.lines or code in db.agency_codes


def _agency(row: _Row, line: int, parsed: ParsedRegistry, db: _Lookups) -> None:
    code = row.key("key")
    name = row.text("name", required=True)
    region_name = row.text("region", required=True)
    region_id = db.regions.get(region_name.lower())
    if region_name and region_id is None:
        row.problems.append(f"unknown region {region_name!r}")
    sworn = row.integer("sworn_officers", default=0, minimum=0, maximum=MAX_SWORN_OFFICERS)
    home = row.integer("min_home_staffing", default=0, minimum=0, maximum=MAX_SWORN_OFFICERS)
    if sworn is not None and home is not None and 0 <= sworn < home:
        row.problems.append(f"min_home_staffing {home} is more than sworn_officers {sworn}")
    fields = {
        "name": name,
        "kind": row.choice("kind", Agency.Kind),
        "region_id": region_id,
        "county": row.text("county"),
        "city": row.text("city"),
        "address": row.text("address"),
        "latitude": row.coordinate("latitude", 90),
        "longitude": row.coordinate("longitude", 180),
        "sworn_officers": sworn,
        "min_home_staffing": home,
        "active": row.boolean("active"),
    }
    if code in parsed.agencies:
        first = parsed.lines[("agency", code)]
        row.problems.append(f"duplicate agency key {code!r} (first on line {first})")
        return
    if name:
        owner = db.agency_codes_by_name.get(name.lower())
        if owner and owner != code:
            row.problems.append(f"name {name!r} is already used by agency {owner!r}")
        first = parsed.lines.setdefault(("agency-name", name.lower()), line)
        if first != line:
            row.problems.append(f"duplicate agency name {name!r} (first on line {first})")
    if code and not row.problems:
        parsed.agencies[code] = fields
    if code:
        parsed.lines[("agency", code)] = line


def _team(row: _Row, line: int, parsed: ParsedRegistry, db: _Lookups) -> None:
    code = row.key("key")
    agency = row.key("agency")
    if agency and KEY_RE.match(agency) and not _known_agency(agency, parsed, db):
        row.problems.append(f"unknown agency {agency!r}")
    name = row.text("name", required=True)
    type_name = row.text("team_type", required=True)
    team_type_id = db.team_types.get(type_name.lower())
    if type_name and team_type_id is None:
        row.problems.append(f"unknown team type {type_name!r}")
    level = (
        row.integer("level", default=0, minimum=1, maximum=MAX_LEVEL)
        if row.values.get("level")
        else None
    )
    if level and team_type_id and (team_type_id, level) not in db.levels:
        row.problems.append(f"team type {type_name!r} has no Type {level}")
    members = row.integer("members", default=None, minimum=1, maximum=MAX_TEAM_MEMBERS)
    memberships = _memberships(row, agency, members, parsed, db)
    if code in parsed.teams:
        first = parsed.lines[("team", code)]
        row.problems.append(f"duplicate team key {code!r} (first on line {first})")
        return
    if agency and name:
        owner = db.team_codes_by_name.get((agency, name.lower()))
        if owner and owner != code:
            row.problems.append(f"agency {agency!r} already has a team {name!r} ({owner!r})")
        first = parsed.lines.setdefault(("team-name", (agency, name.lower())), line)
        if first != line:
            row.problems.append(f"duplicate team name {name!r} (first on line {first})")
    if code and not row.problems:
        parsed.teams[code] = {
            "agency": agency,
            "name": name,
            "team_type_id": team_type_id,
            "level": level,
            "members": members,
            "commander_name": row.text("commander_name"),
            "commander_phone": row.text("commander_phone"),
            "notes": row.values.get("notes", ""),
            "active": row.boolean("active"),
            "memberships": memberships,
        }
    if code:
        parsed.lines[("team", code)] = line


def _memberships(row: _Row, host: str, members, parsed, db) -> dict[str, int]:
    """Parse "CODE:officers; CODE:officers" into {agency code: officers}."""
    raw = row.values.get("member_agencies", "")
    result: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        code, sep, count = (s.strip() for s in part.partition(":"))
        code = code.lower()  # keys are case-insensitive
        if not sep or not code:
            row.problems.append(f"member_agencies entry {part!r} must look like CODE:officers")
            continue
        try:
            officers = int(count)
        except ValueError:
            row.problems.append(f"member_agencies officers {count!r} for {code!r} is not a number")
            continue
        if officers < 1:
            row.problems.append(f"member agency {code!r} must contribute at least 1 officer")
        elif officers > MAX_TEAM_MEMBERS:
            row.problems.append(
                f"member agency {code!r}: {officers} officers is more than {MAX_TEAM_MEMBERS:,}"
            )
            continue
        if code == host:
            row.problems.append(f"the host agency {code!r} cannot also be a member agency")
        elif not _known_agency(code, parsed, db):
            row.problems.append(f"unknown member agency {code!r}")
        if code in result:
            row.problems.append(f"member agency {code!r} is listed twice")
        result[code] = officers
    if members is not None and sum(result.values()) > members:
        row.problems.append(
            f"member agencies contribute {sum(result.values())} officers but the team has {members}"
        )
    return result


def _contact(row: _Row, line: int, parsed: ParsedRegistry, db: _Lookups) -> None:
    agency = row.key("agency")
    if agency and KEY_RE.match(agency) and not _known_agency(agency, parsed, db):
        row.problems.append(f"unknown agency {agency!r}")
    email = row.text("email", required=True)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            row.problems.append(f"email {email!r} is not a valid address")
    mobile = row.text("mobile")
    try:
        mobile = to_e164(mobile)
    except ValueError as exc:
        row.problems.append(f"mobile {exc}")
    channels = row.choice("channels", Contact.Channels, default=Contact.Channels.EMAIL)
    if channels in (Contact.Channels.SMS, Contact.Channels.BOTH) and not row.values.get("mobile"):
        row.problems.append(f"channels {channels!r} needs a mobile number")
    quiet_start, quiet_end = row.quiet_hours("quiet_hours")
    fields = {
        "name": row.text("name", required=True),
        "title": row.text("title"),
        "email": email,
        "phone": row.text("phone"),
        "mobile": mobile,
        "channels": channels,
        "quiet_start": quiet_start,
        "quiet_end": quiet_end,
        "role": row.choice("contact_role", Contact.Role, default=Contact.Role.ALTERNATE),
        "active": row.boolean("active"),
    }
    key = (agency, email.lower())
    if key in parsed.contacts:
        first = parsed.lines[("contact", key)]
        row.problems.append(f"duplicate contact {email!r} for {agency!r} (first on line {first})")
        return
    if agency and email and not row.problems:
        parsed.contacts[key] = fields
    parsed.lines[("contact", key)] = line


def _check_primaries(parsed: ParsedRegistry, db: _Lookups) -> None:
    """After the import, each agency may have at most one primary contact."""
    primaries: dict[str, list[tuple[str, str]]] = {}
    mentioned: dict[str, set[str]] = {}
    for (agency, email), fields in parsed.contacts.items():
        mentioned.setdefault(agency, set()).add(email)
        if fields["role"] == Contact.Role.PRIMARY:
            primaries.setdefault(agency, []).append((email, fields["email"]))
    for agency, emails in primaries.items():
        existing = db.primary_emails.get(agency)
        if existing and existing not in mentioned[agency]:
            line = parsed.lines[("contact", (agency, emails[0][0]))]
            parsed.errors.append(
                RowError(
                    line,
                    f"agency {agency!r} already has primary contact {existing!r}: "
                    "list that contact as alternate in this file, or this one as alternate",
                )
            )
        for email, shown in emails[1:]:
            first = parsed.lines[("contact", (agency, emails[0][0]))]
            parsed.errors.append(
                RowError(
                    parsed.lines[("contact", (agency, email))],
                    f"second primary contact {shown!r} for {agency!r} "
                    f"(the primary is on line {first}): an agency has at most one",
                )
            )
