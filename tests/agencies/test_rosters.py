"""Team rosters (issue 19, part 1): members and qualifications kept by the agency's commander, one
by one and by CSV (all or nothing, line-numbered errors), the team's size following its roster,
audited; names and numbers only for the agency's commander (and coordinators where allowed)."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agencies import rosters
from agencies.models import SpecialTeam, TeamMember
from readiness.models import AuditEvent
from tests.conftest import FIXED_NOW
from tests.factories import AgencyFactory, SpecialTeamFactory, TeamMembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(commander):
    return SpecialTeamFactory(agency=commander.agency, name="North SRT", members=12)


def upload(client, team, text: str, **extra):
    url = reverse("agencies:roster-import", args=[team.agency_id, team.pk])
    return client.post(url, {"file": SimpleUploadedFile("roster.csv", text.encode()), **extra})


ROSTER = (
    "name,rank,agency,email,mobile,home_base,leader,qualifications,active\n"
    "Dana Ruiz,Sergeant,,dana@pd.example,(312) 555-0142,Station 2,true,"
    "swat-cert:2027-06-30; crowd-control,\n"
    "Sam Lee,Officer,,,,,,,\n"
)


def test_a_commander_imports_the_roster_and_the_team_takes_its_size(client, clock, commander, team):
    client.force_login(commander)
    response = upload(client, team, ROSTER)
    assert response.status_code == 302
    dana = TeamMember.objects.get(name="Dana Ruiz")
    assert (dana.mobile, dana.is_leader, dana.home_base) == ("+13125550142", True, "Station 2")
    assert rosters.qualifications_text(dana) == "swat-cert:2027-06-30; crowd-control"
    team.refresh_from_db()
    assert team.members == 2  # follows the roster
    assert AuditEvent.objects.filter(action="roster.import").count() == 1
    assert AuditEvent.objects.filter(action="teammember.create").count() == 2
    assert not AuditEvent.objects.filter(object_repr__contains="Dana").exists()  # no names
    # The same file again changes nothing; a changed row updates in place.
    upload(client, team, ROSTER)
    assert TeamMember.objects.count() == 2
    assert AuditEvent.objects.filter(action="teammember.update").count() == 0
    upload(client, team, ROSTER.replace("Sergeant", "Lieutenant"))
    dana.refresh_from_db()
    assert dana.rank == "Lieutenant"
    assert AuditEvent.objects.get(action="teammember.update").changes["rank"] == [
        "Sergeant", "Lieutenant",
    ]  # fmt: skip


def test_a_bad_roster_is_refused_whole_with_each_line_said(client, clock, commander, team):
    other = AgencyFactory(code="other-pd")
    client.force_login(commander)
    text = (
        "name,agency,mobile,qualifications,leader\n"
        "Dana Ruiz,,(312) 555-0142,swat-cert:2020-01-01,\n"
        "Dana Ruiz,,,,\n"
        "Sam Lee,other-pd,12345,unicorn-taming,maybe\n"
        ",,,,\n"
    )
    response = upload(client, team, text)
    assert response.status_code == 422
    errors = [str(e) for e in response.context["result"].errors]
    assert "line 2: swat-cert expired on 2020-01-01: renew it or leave it out" in errors
    assert "line 3: duplicate member 'Dana Ruiz' (first on line 2)" in errors
    assert any(e.startswith("line 4: agency 'other-pd' is not on this team") for e in errors)
    assert any(e.startswith("line 4: mobile '12345' is not a valid number") for e in errors)
    assert any(e.startswith("line 4: unknown qualification 'unicorn-taming'") for e in errors)
    assert "line 4: leader 'maybe' must be true or false" in errors
    assert "line 5: missing name" in errors
    assert not TeamMember.objects.exists() and other.pk


def test_members_of_a_multi_agency_team_come_from_its_agencies(client, clock, commander, team):
    partner = AgencyFactory(code="partner-pd")
    TeamMembershipFactory(team=team, agency=partner, officers=3)
    client.force_login(commander)
    assert upload(client, team, "name,agency\nAl Kim,partner-pd\n").status_code == 302
    assert TeamMember.objects.get().agency == partner


def test_the_member_form_checks_and_saves_qualifications(client, clock, commander, team):
    client.force_login(commander)
    url = reverse("agencies:member-create", args=[team.agency_id, team.pk])
    data = {"name": "Dana Ruiz", "agency": team.agency_id, "mobile": "312 555 0142",
            "qualifications": "swat-cert:2031-01-01; dive", "active": "on"}  # fmt: skip
    assert client.post(url, {**data, "qualifications": "swat-cert:tomorrow"}).status_code == 422
    assert client.post(url, data).status_code == 302
    dana = TeamMember.objects.get()
    assert dana.mobile == "+13125550142"
    assert {q.qualification.code: q.expires_on for q in dana.qualifications.all()} == {
        "swat-cert": datetime.date(2031, 1, 1), "dive": None,
    }  # fmt: skip
    again = client.post(url, data)
    assert again.status_code == 422 and "already on North SRT" in again.text


def test_names_are_for_the_agencys_commander_counts_for_everyone_else(
    client, clock, commander, official, coordinator, other_commander, team, settings
):
    TeamMember.objects.create(team=team, agency=team.agency, name="Dana Ruiz",
                              mobile="+13125550142", is_leader=True)  # fmt: skip
    url = reverse("agencies:roster", args=[team.agency_id, team.pk])
    client.force_login(commander)
    assert "Dana Ruiz" in client.get(url).text
    for person in (official, coordinator):
        client.force_login(person)
        page = client.get(url)
        assert page.status_code == 200
        assert "Dana Ruiz" not in page.text and "+13125550142" not in page.text
        assert "1</strong> active member" in page.text
    client.force_login(other_commander)
    assert client.get(url).status_code == 404
    settings.ROSTER_NAMES_TO_COORDINATORS = True
    client.force_login(coordinator)
    assert "Dana Ruiz" in client.get(url).text


def test_an_expired_qualification_is_shown_as_expired_and_not_counted(
    client, clock, commander, official, team
):
    dana = TeamMember.objects.create(team=team, agency=team.agency, name="Dana Ruiz")
    sam = TeamMember.objects.create(team=team, agency=team.agency, name="Sam Lee")
    swat = rosters.parse_qualifications("swat-cert", today=FIXED_NOW.date())[0][0][0]
    dana.qualifications.create(qualification=swat, expires_on=FIXED_NOW.date())
    sam.qualifications.create(qualification=swat, expires_on=datetime.date(2020, 1, 1))
    url = reverse("agencies:roster", args=[team.agency_id, team.pk])
    client.force_login(commander)
    assert "expired 1 Jan 2020" in client.get(url).text
    client.force_login(official)
    assert "SWAT certification: 1 member" in client.get(url).text
    assert SpecialTeam.objects.get(pk=team.pk).members == 12  # set by hand, not by member saves


def test_the_api_keeps_members_with_the_forms_rules(client, clock, commander, official, team):
    client.force_login(commander)
    created = client.post(
        reverse("api:team-member-list"),
        {"team": team.pk, "name": "Dana Ruiz", "mobile": "312-555-0142",
         "qualifications": "swat-cert:2030-05-01", "is_leader": True},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["mobile"] == "+13125550142" and body["is_leader"] is True
    assert body["qualifications"] == [
        {"code": "swat-cert", "name": "SWAT certification", "expires_on": "2030-05-01"}
    ]
    bad = client.patch(
        reverse("api:team-member-detail", args=[body["id"]]),
        {"qualifications": "swat-cert:2001-01-01"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "expired on 2001-01-01" in str(bad.json()["errors"])
    assert SpecialTeam.objects.get(pk=team.pk).members == 1
    client.force_login(official)
    assert client.get(reverse("api:team-member-list")).status_code == 403
