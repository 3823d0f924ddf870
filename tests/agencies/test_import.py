"""Registry CSV import: create, update in place, no-op re-import, all-or-nothing errors with line
numbers, header and encoding problems, dry run, and the import_registry command."""

import csv
import io
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from agencies import services
from agencies.importer import COLUMNS
from agencies.models import Agency, Contact, SpecialTeam, TeamMembership
from tests.factories import AgencyFactory, ContactFactory, RegionFactory

pytestmark = pytest.mark.django_db

REGION = "Region 1 - Northeast"


def csv_text(*rows: dict, columns=COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def agency_row(key, name, **extra) -> dict:
    return {
        "record": "agency",
        "key": key,
        "name": name,
        "kind": "municipal",
        "region": REGION,
        "latitude": "41.76",
        "longitude": "-88.32",
        "sworn_officers": "100",
        "min_home_staffing": "60",
        **extra,
    }


def team_row(key, agency, name, **extra) -> dict:
    return {
        "record": "team",
        "key": key,
        "agency": agency,
        "name": name,
        "team_type": "swat",
        "level": "2",
        "members": "20",
        **extra,
    }


def contact_row(agency, name, email, **extra) -> dict:
    return {"record": "contact", "agency": agency, "name": name, "email": email, **extra}


def good_rows() -> list[dict]:
    return [
        agency_row(
            "aurora", "Aurora Police Department", sworn_officers="381", min_home_staffing="229"
        ),
        agency_row("naperville", "Naperville Police Department", kind="municipal"),
        agency_row("kane-so", "Kane County Sheriff's Office", kind="sheriff", county="Kane County"),
        team_row("aurora-srt", "aurora", "Aurora SRT", members="22", commander_name="Lt. Rivera"),
        team_row(
            "ne-mff",
            "aurora",
            "Northeast Mobile Field Force",
            team_type="mff",
            level="2",
            members="40",
            member_agencies="naperville:6; kane-so:8",
        ),
        contact_row(
            "aurora",
            "Dana Novak",
            "dana.novak@aurora.example",
            title="Chief of Police",
            contact_role="primary",
        ),
        contact_row("aurora", "Lee Walsh", "lee.walsh@aurora.example", title="Lieutenant"),
        contact_row(
            "naperville",
            "Sam Haddad",
            "sam.haddad@naperville.example",
            title="Chief of Police",
            contact_role="primary",
        ),
    ]


@pytest.fixture
def region(db):
    return RegionFactory(name=REGION)


@pytest.fixture
def imported(region):
    result = services.registry_import(text=csv_text(*good_rows()))
    assert result.ok, result.errors
    return result


def registry_counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Agency, SpecialTeam, TeamMembership, Contact)
    }


def test_good_file_creates_everything(imported):
    assert imported.rows == 8
    assert imported.created == Counter(agency=3, team=2, contact=3)
    assert imported.updated == imported.unchanged == Counter()

    aurora = Agency.objects.get(code="aurora")
    assert (aurora.name, aurora.region.name, aurora.sworn_officers, aurora.min_home_staffing) == (
        "Aurora Police Department",
        REGION,
        381,
        229,
    )
    assert Agency.objects.get(code="kane-so").kind == Agency.Kind.SHERIFF

    srt = SpecialTeam.objects.get(code="aurora-srt")
    assert (srt.agency, srt.team_type.code, srt.level, srt.members, srt.commander_name) == (
        aurora,
        "swat",
        2,
        22,
        "Lt. Rivera",
    )
    assert not srt.memberships.exists()
    mff = SpecialTeam.objects.get(code="ne-mff")
    assert mff.agency == aurora
    assert dict(mff.memberships.values_list("agency__code", "officers")) == {
        "naperville": 6,
        "kane-so": 8,
    }

    assert dict(aurora.contacts.values_list("email", "role")) == {
        "dana.novak@aurora.example": Contact.Role.PRIMARY,
        "lee.walsh@aurora.example": Contact.Role.ALTERNATE,
    }
    assert Contact.objects.get(email="sam.haddad@naperville.example").title == "Chief of Police"


def test_bad_rows_change_nothing_and_are_all_reported(region):
    existing = AgencyFactory(code="joliet", name="Joliet Police Department", sworn_officers=250)
    ContactFactory(agency=existing)
    before = registry_counts()
    rows = [
        # Lines 2-3: a good new agency whose quoted address spans two lines.
        agency_row("lisle", "Lisle Police Department", address="1 Main St\nSuite 2"),
        agency_row("joliet", "Joliet Police Department", sworn_officers="999"),  # 4: good update
        agency_row("nameless", ""),  # 5
        agency_row("elgin", "Elgin Police Department", region="Region 9"),  # 6
        agency_row("wheaton", "Wheaton Police Department", latitude="north"),  # 7
        agency_row("dekalb", "DeKalb Police Department", longitude="-181"),  # 8
        agency_row("lombard", "Lombard Police Department", sworn_officers="-5"),  # 9
        agency_row("lisle", "Lisle Village Police"),  # 10
        team_row("lisle-srt", "lisle", "Lisle SWAT", team_type="swatt"),  # 11
        team_row("lisle-k9", "lisle", "Lisle K9", team_type="k9", level="3"),  # 12
        team_row("ghost-srt", "nowhere", "Ghost SRT"),  # 13
        team_row("joliet-srt", "joliet", "Joliet SRT", members="0"),  # 14
        contact_row("lisle", "Pat Brennan", "not-an-email"),  # 15
        contact_row("lisle", "Robin Lee", "robin.lee@lisle.example", contact_role="primary"),  # 16
        contact_row("lisle", "Quinn Moreno", "quinn@lisle.example", contact_role="primary"),  # 17
        {"record": "vehicle", "key": "bearcat", "name": "BearCat"},  # 18
    ]

    result = services.registry_import(text=csv_text(*rows))

    expected = {
        5: "missing name",
        6: "unknown region 'Region 9'",
        7: "bad coordinates: latitude 'north' is not a number",
        8: "bad coordinates: longitude -181 is outside",
        9: "sworn_officers -5 is negative",
        10: "duplicate agency key 'lisle' (first on line 2)",
        11: "unknown team type 'swatt'",
        12: "team type 'k9' has no Type 3",
        13: "unknown agency 'nowhere'",
        14: "members 0 is less than 1",
        15: "email 'not-an-email' is not a valid address",
        16: None,  # the first primary is fine
        17: "second primary contact 'quinn@lisle.example' for 'lisle' (the primary is on line 16)",
        18: "unknown record 'vehicle'",
    }
    assert not result.ok
    assert [e.line for e in result.errors] == [line for line, m in expected.items() if m]
    for error in result.errors:
        assert expected[error.line] in error.message
    assert result.created == result.updated == Counter()
    assert registry_counts() == before
    existing.refresh_from_db()
    assert existing.sworn_officers == 250
    assert not Agency.objects.filter(code="lisle").exists()


def test_reimporting_the_same_file_changes_nothing(imported):
    def stamps():
        return {
            model.__name__: sorted(model.objects.values_list("pk", "updated_at"))
            for model in (Agency, SpecialTeam, Contact)
        }

    before, memberships = stamps(), sorted(TeamMembership.objects.values_list("pk", "officers"))

    result = services.registry_import(text=csv_text(*good_rows()))

    assert result.ok
    assert result.unchanged == Counter(agency=3, team=2, contact=3)
    assert result.created == result.updated == Counter()
    assert not result.changed
    assert stamps() == before
    assert sorted(TeamMembership.objects.values_list("pk", "officers")) == memberships


def test_changed_rows_update_in_place(imported):
    pks = {
        "aurora": Agency.objects.get(code="aurora").pk,
        "srt": SpecialTeam.objects.get(code="aurora-srt").pk,
        "mff": SpecialTeam.objects.get(code="ne-mff").pk,
        "dana": Contact.objects.get(email="dana.novak@aurora.example").pk,
        "lee": Contact.objects.get(email="lee.walsh@aurora.example").pk,
    }
    rows = good_rows()
    rows[0]["sworn_officers"] = "400"
    rows[3]["members"] = "24"
    rows[4]["member_agencies"] = "naperville:7; kane-so:8"
    # The primary role moves from Dana to Lee in the same file.
    rows[5]["contact_role"] = "alternate"
    rows[6]["contact_role"] = "primary"
    rows[7]["title"] = "Deputy Chief"

    result = services.registry_import(text=csv_text(*rows))

    assert result.ok, result.errors
    assert result.updated == Counter(agency=1, team=2, contact=3)
    assert result.unchanged == Counter(agency=2)
    assert result.created == Counter()
    assert Agency.objects.get(pk=pks["aurora"]).sworn_officers == 400
    assert SpecialTeam.objects.get(pk=pks["srt"]).members == 24
    assert dict(
        TeamMembership.objects.filter(team_id=pks["mff"]).values_list("agency__code", "officers")
    ) == {"naperville": 7, "kane-so": 8}
    assert Contact.objects.get(pk=pks["dana"]).role == Contact.Role.ALTERNATE
    assert Contact.objects.get(pk=pks["lee"]).role == Contact.Role.PRIMARY
    assert Contact.objects.get(email="sam.haddad@naperville.example").title == "Deputy Chief"
    assert registry_counts() == {"Agency": 3, "SpecialTeam": 2, "TeamMembership": 2, "Contact": 3}


def test_member_agency_left_out_of_the_cell_is_removed(imported):
    rows = good_rows()
    rows[4]["member_agencies"] = "naperville:6"

    result = services.registry_import(text=csv_text(*rows))

    assert result.ok
    assert result.updated == Counter(team=1)
    team = SpecialTeam.objects.get(code="ne-mff")
    assert list(team.memberships.values_list("agency__code", flat=True)) == ["naperville"]


def test_new_primary_while_stored_primary_is_not_in_file(imported):
    text = csv_text(
        contact_row("aurora", "Avery Okafor", "avery@aurora.example", contact_role="primary")
    )

    result = services.registry_import(text=text)

    assert [e.line for e in result.errors] == [2]
    assert "already has primary contact 'dana.novak@aurora.example'" in result.errors[0].message
    assert not Contact.objects.filter(email="avery@aurora.example").exists()


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("record,agency,name,email", "missing column(s) key"),
        ("record,key,agency,name,vehicle", "unknown column(s) vehicle"),
        ("record,key,agency,name,name", "repeated column(s) name"),
    ],
)
def test_header_problems_are_reported_on_line_1(region, header, problem):
    text = f"{header}\r\nagency,aurora,,Aurora Police Department,x\r\n"

    result = services.registry_import(text=text)

    assert [e.line for e in result.errors] == [1]
    assert problem in result.errors[0].message
    assert not Agency.objects.exists()


def test_dry_run_counts_but_writes_nothing(region):
    result = services.registry_import(text=csv_text(*good_rows()), dry_run=True)

    assert result.ok and result.dry_run
    assert result.created == Counter(agency=3, team=2, contact=3)
    assert registry_counts() == {"Agency": 0, "SpecialTeam": 0, "TeamMembership": 0, "Contact": 0}


def test_contact_values_longer_than_the_columns_are_line_errors(imported):
    long_email = "x" * 64 + "@" + ".".join(["d" * 60] * 4) + ".example"  # 317 characters
    text = csv_text(
        contact_row("aurora", "N" * 151, "long.name@aurora.example"),
        contact_row("aurora", "Long Email", long_email),
    )

    result = services.registry_import(text=text)

    assert [e.line for e in result.errors] == [2, 3]
    assert not Contact.objects.filter(agency__code="aurora", name="Long Email").exists()


def test_command_imports_a_good_file(region, tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(csv_text(*good_rows()), encoding="utf-8")
    out = io.StringIO()

    call_command("import_registry", str(path), stdout=out)

    assert "8 rows. agencies: 3 created, 0 updated, 0 unchanged; teams: 2 created" in out.getvalue()
    assert registry_counts() == {"Agency": 3, "SpecialTeam": 2, "TeamMembership": 2, "Contact": 3}


def test_command_dry_run_writes_nothing(region, tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(csv_text(*good_rows()), encoding="utf-8")
    out = io.StringIO()

    call_command("import_registry", "--dry-run", str(path), stdout=out)

    assert "Dry run, nothing written" in out.getvalue()
    assert not Agency.objects.exists()


def test_command_reports_bad_lines_and_imports_nothing(region, tmp_path):
    path = tmp_path / "registry.csv"
    rows = [*good_rows(), agency_row("elgin", "Elgin Police Department", region="Region 9")]
    rows.insert(1, agency_row("bad-lat", "Bad Lat Police", latitude="95"))
    path.write_text(csv_text(*rows), encoding="utf-8")
    err = io.StringIO()

    with pytest.raises(CommandError, match="2 error"):
        call_command("import_registry", str(path), stderr=err)

    assert f"{path}: line 3: bad coordinates: latitude 95 is outside" in err.getvalue()
    assert f"{path}: line 11: unknown region 'Region 9'" in err.getvalue()
    assert not Agency.objects.exists()


def test_command_accepts_utf8_with_bom(region, tmp_path):
    path = tmp_path / "registry.csv"
    text = csv_text(agency_row("penasco", "Peñasco Police Department"))
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))

    call_command("import_registry", str(path), stdout=io.StringIO())

    assert Agency.objects.get(code="penasco").name == "Peñasco Police Department"


def test_command_refuses_non_utf8_file(region, tmp_path):
    path = tmp_path / "registry.csv"
    path.write_bytes(csv_text(agency_row("penasco", "Peñasco Police Department")).encode("latin-1"))

    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("import_registry", str(path))

    assert not Agency.objects.exists()


def test_large_files_are_looked_up_in_chunks(region, monkeypatch):
    # SQLite caps the parameters of one statement; the import splits its IN (...) lookups.
    monkeypatch.setattr(services, "CHUNK", 2)
    result = services.registry_import(text=csv_text(*good_rows()))
    assert result.ok, result.errors
    assert registry_counts() == {"Agency": 3, "SpecialTeam": 2, "TeamMembership": 2, "Contact": 3}
    again = services.registry_import(text=csv_text(*good_rows()))
    assert sum(again.created.values()) + sum(again.updated.values()) == 0


@pytest.fixture
def contacts_refused(transactional_db):
    """A real database error in the middle of an import: a trigger that refuses every new
    contact, so agencies and teams are written before the contacts fail."""
    from django.db import connection

    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_contact() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'contacts are read-only today'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_contact BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_contact()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_contact BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'contacts are read-only today'); END"
            )
    yield
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER refuse_contact ON {table}")
            cursor.execute("DROP FUNCTION refuse_contact()")
        else:
            cursor.execute("DROP TRIGGER refuse_contact")


def test_a_database_error_mid_import_writes_nothing_and_says_so(client, contacts_refused):
    """A real (not dry-run) import that the database refuses after agencies and teams were
    written: nothing stays, and the page says why, with nothing half-imported."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from readiness.models import AuditEvent, User
    from tests.factories import UserFactory

    RegionFactory(name=REGION)
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    # Agencies and contacts only: team types are seeded by a migration, which an earlier
    # transactional test's flush may have emptied.
    rows = [row for row in good_rows() if row["record"] != "team"]
    upload = SimpleUploadedFile("registry.csv", csv_text(*rows).encode(), "text/csv")
    response = client.post(reverse("agencies:registry-import"), {"file": upload})
    assert response.status_code == 422
    page = response.text
    assert "Nothing was imported" in page
    assert "the database refused the import" in page
    assert "contacts are read-only today" in page
    assert registry_counts() == {"Agency": 0, "SpecialTeam": 0, "TeamMembership": 0, "Contact": 0}
    assert not AuditEvent.objects.filter(action__startswith="registry.").exists()


# Input holes: keys that differ in case, numbers out of range, NUL bytes, broken quoting -------


def test_keys_that_differ_only_in_case_are_one_key(region, tmp_path):
    first = services.registry_import(text=csv_text(agency_row("adupcase-x", "Adupcase PD")))
    assert first.ok and Agency.objects.get().code == "adupcase-x"
    # The same key in capitals updates that agency; it does not create a second one.
    again = services.registry_import(
        text=csv_text(agency_row("ADUPCASE-X", "Adupcase PD", sworn_officers="120"))
    )
    assert again.ok, again.errors
    assert again.updated["agency"] == 1 and again.created["agency"] == 0
    assert list(Agency.objects.values_list("code", "sworn_officers")) == [("adupcase-x", 120)]
    # Within one file: reported as the duplicate it is, and teams refer to it in any case.
    both = csv_text(
        agency_row("case-y", "Case Y PD"),
        agency_row("CASE-Y", "Case Y Police"),
        team_row("Case-Y-SRT", "CASE-y", "Case Y SRT"),
        contact_row("Case-Y", "Cam Case", "cam@casey.example", contact_role="primary"),
    )
    result = services.registry_import(text=both)
    assert [str(e) for e in result.errors] == [
        "line 3: duplicate agency key 'case-y' (first on line 2)"
    ]
    ok = services.registry_import(
        text=csv_text(
            agency_row("case-y", "Case Y PD"),
            team_row("Case-Y-SRT", "CASE-y", "Case Y SRT"),
            contact_row("Case-Y", "Cam Case", "cam@casey.example", contact_role="primary"),
        )
    )
    assert ok.ok, ok.errors
    team = SpecialTeam.objects.get()
    assert (team.code, team.agency.code) == ("case-y-srt", "case-y")


def test_an_agency_key_in_other_capitals_is_refused_in_the_admin(client, region):
    from django.urls import reverse

    from readiness.models import User
    from tests.factories import UserFactory

    AgencyFactory(code="adupcase-x", name="Adupcase PD", region=region)
    client.force_login(UserFactory(role=User.Role.COORDINATOR, is_staff=True))
    response = client.post(
        reverse("admin:agencies_agency_add"),
        {
            "code": "ADUPCASE-X",
            "name": "Another PD",
            "kind": "municipal",
            "region": region.pk,
            "latitude": 41.8,
            "longitude": -88.1,
            "sworn_officers": 10,
            "min_home_staffing": 2,
            "active": "on",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "An agency with this key already exists" in response.text
    assert Agency.objects.count() == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            agency_row("big", "Big PD", sworn_officers="99999999999"),
            "line 2: sworn_officers 99999999999 is more than 100,000",
        ),
        (
            agency_row("big", "Big PD", min_home_staffing="3000000000"),
            "line 2: min_home_staffing 3000000000 is more than 100,000",
        ),
        (
            team_row("huge", "aurora", "Huge SRT", members="2000000000"),
            "line 2: members 2000000000 is more than 2,000",
        ),
        (
            team_row("huge", "aurora", "Huge SRT", level="40000"),
            "line 2: level 40000 is more than 9",
        ),
    ],
)
def test_numbers_beyond_their_range_are_line_errors(imported, row, message):
    before = registry_counts()
    result = services.registry_import(text=csv_text(row))
    assert [str(e) for e in result.errors] == [message]
    assert registry_counts() == before


def test_a_nul_byte_is_a_line_error_on_the_page_and_the_command(client, region, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from readiness.models import User
    from tests.factories import UserFactory

    text = csv_text(
        agency_row("aurora", "Aurora PD"), agency_row("nul", "Nul\x00 PD", city="Nul\x00ville")
    )
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    upload = SimpleUploadedFile("registry.csv", text.encode(), "text/csv")
    response = client.post(reverse("agencies:registry-import"), {"file": upload})
    assert response.status_code == 422
    assert "name contains a NUL character (byte 0)" in response.text
    assert "city contains a NUL character" in response.text
    assert not Agency.objects.exists()

    path = tmp_path / "registry.csv"
    path.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 error"):
        call_command("import_registry", str(path), stderr=err)
    assert f"{path}: line 3: name contains a NUL character" in err.getvalue()
    assert not Agency.objects.exists()


def test_a_huge_value_is_an_error_on_its_line_and_later_errors_still_show(region):
    text = csv_text(
        agency_row("aurora", "Aurora PD", address="x" * 200_000),
        agency_row("elgin", "Elgin PD", region="Region 9"),
    )
    result = services.registry_import(text=text)
    assert [str(e) for e in result.errors] == [
        "line 2: address is longer than 300 characters",
        "line 3: unknown region 'Region 9'",
    ]
    past_the_parser = csv_text(agency_row("aurora", "Aurora PD", address="x" * 1_200_000),
                               agency_row("elgin", "Elgin PD", region="Region 9"))  # fmt: skip
    errors = [str(e) for e in services.registry_import(text=past_the_parser).errors]
    assert errors == [
        "line 2: not valid CSV: a value is longer than 1,000,000 characters",
        "line 3: unknown region 'Region 9'",
    ]


def test_an_unterminated_quote_is_named_with_its_line(region):
    good = csv_text(agency_row("aurora", "Aurora PD"), agency_row("elgin", "Elgin PD"))
    lines = good.splitlines(keepends=True)
    lines[2] = lines[2].replace("Elgin PD", '"Elgin PD')  # opened, never closed
    lines.append(csv_text(agency_row("batavia", "Batavia PD")).splitlines(keepends=True)[1])
    result = services.registry_import(text="".join(lines))
    assert len(result.errors) == 1
    assert str(result.errors[0]).startswith(
        "line 3: not valid CSV: unterminated quote starting on line 3"
    )
    assert not Agency.objects.exists()


def test_team_sizes_and_sworn_figures_are_bounded_in_the_admin_and_the_database(region):
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    from tests.factories import SpecialTeamFactory

    team = SpecialTeamFactory(members=20)
    team.members = 2_000_000_000
    with pytest.raises(ValidationError, match="less than or equal to 2000"):
        team.full_clean()  # what the admin's form runs
    with transaction.atomic(), pytest.raises(IntegrityError):
        SpecialTeam.objects.filter(pk=team.pk).update(members=2_000_000_000)
    agency = team.agency
    agency.sworn_officers = 99_999_999
    with pytest.raises(ValidationError, match="less than or equal to 100000"):
        agency.full_clean()
