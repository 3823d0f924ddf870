"""Registry pages: list with search, filters and pagination; agency page; the CSV upload page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agencies.models import Agency, Contact
from readiness.models import User
from tests.factories import (
    AgencyFactory,
    ContactFactory,
    RegionFactory,
    SpecialTeamFactory,
    TeamMembershipFactory,
    TeamTypeFactory,
    UserFactory,
)

LIST = reverse("agencies:agency-list")
IMPORT = reverse("agencies:registry-import")


def names(response) -> list[str]:
    return [a.name for a in response.context["page"].object_list]


@pytest.mark.parametrize("url", [LIST, IMPORT, reverse("agencies:import-example")])
def test_anonymous_is_sent_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_agency_detail_anonymous_redirects(client, agency):
    response = client.get(agency.get_absolute_url())
    assert response.status_code == 302


@pytest.mark.parametrize("who", ["coordinator", "commander", "official"])
def test_every_role_reads_the_registry(client, request, who, agency):
    client.force_login(request.getfixturevalue(who))
    assert client.get(LIST).status_code == 200
    assert client.get(agency.get_absolute_url()).status_code == 200


def test_search_matches_name_city_and_county(client, official):
    AgencyFactory(name="Aurora Police Department", city="Aurora", county="Kane County")
    AgencyFactory(name="Joliet Police Department", city="Joliet", county="Will County")
    client.force_login(official)
    assert names(client.get(LIST, {"q": "aurora"})) == ["Aurora Police Department"]
    assert names(client.get(LIST, {"q": "will"})) == ["Joliet Police Department"]
    assert names(client.get(LIST, {"q": "police joliet"})) == ["Joliet Police Department"]
    assert names(client.get(LIST, {"q": "nowhere"})) == []
    assert "No agency matches" in client.get(LIST, {"q": "nowhere"}).text


def test_filters_by_region_kind_and_team_type(client, official):
    north, south = RegionFactory(name="North"), RegionFactory(name="South")
    swat = TeamTypeFactory(code="swat")
    k9 = TeamTypeFactory(code="k9")
    a = AgencyFactory(name="A PD", region=north, kind=Agency.Kind.MUNICIPAL)
    b = AgencyFactory(name="B Sheriff", region=north, kind=Agency.Kind.SHERIFF)
    c = AgencyFactory(name="C PD", region=south, kind=Agency.Kind.MUNICIPAL)
    SpecialTeamFactory(agency=a, team_type=swat)
    SpecialTeamFactory(agency=b, team_type=k9, level=1, members=2)
    # C has no team of its own but contributes officers to A's multi-agency SWAT team.
    TeamMembershipFactory(team=a.teams.get(), agency=c, officers=3)
    client.force_login(official)
    assert names(client.get(LIST, {"region": north.pk})) == ["A PD", "B Sheriff"]
    assert names(client.get(LIST, {"kind": "sheriff"})) == ["B Sheriff"]
    assert names(client.get(LIST, {"team_type": swat.pk})) == ["A PD", "C PD"]
    assert names(client.get(LIST, {"team_type": k9.pk, "region": north.pk})) == ["B Sheriff"]
    assert names(client.get(LIST, {"team_type": swat.pk, "kind": "sheriff"})) == []


def test_inactive_agencies_hidden_unless_asked(client, official):
    AgencyFactory(name="Open PD")
    AgencyFactory(name="Closed PD", active=False)
    client.force_login(official)
    assert names(client.get(LIST)) == ["Open PD"]
    assert names(client.get(LIST, {"inactive": "on"})) == ["Closed PD", "Open PD"]


def test_bad_filter_values_are_ignored_not_500(client, official, agency):
    client.force_login(official)
    response = client.get(LIST, {"region": "abc", "kind": "pirate", "page": "999"})
    assert response.status_code == 200


def test_list_shows_team_counts_and_paginates(client, official):
    first = AgencyFactory(name="AAA Police Department")
    SpecialTeamFactory(agency=first, members=20)
    SpecialTeamFactory(agency=first, members=5, team_type=TeamTypeFactory(code="k9"), level=1)
    AgencyFactory.create_batch(60)
    client.force_login(official)
    page1 = client.get(LIST)
    row = page1.context["page"].object_list[0]
    assert (row.name, row.team_count, row.team_officers) == ("AAA Police Department", 2, 25)
    assert len(page1.context["page"].object_list) == 50
    assert "page 1 of 2" in page1.text
    page2 = client.get(LIST, {"page": 2})
    assert len(page2.context["page"].object_list) == 11


def test_pagination_keeps_the_filters(client, official):
    region = RegionFactory(name="Big")
    AgencyFactory.create_batch(55, region=region)
    client.force_login(official)
    response = client.get(LIST, {"region": region.pk})
    assert f"region={region.pk}&amp;page=2" in response.text


@pytest.mark.parametrize("n", [5, 120])
def test_list_query_count_does_not_grow(client, official, django_assert_max_num_queries, n):
    for agency in AgencyFactory.create_batch(n):
        SpecialTeamFactory(agency=agency)
    swat = TeamTypeFactory(code="swat")
    client.force_login(official)
    # session, user, two-factor check, count, page rows, region and team-type choices, the
    # chosen team type
    with django_assert_max_num_queries(8):
        response = client.get(LIST, {"q": "Town", "team_type": swat.pk})
    assert response.status_code == 200


def test_agency_page_shows_teams_members_contacts_and_location(client, official):
    host = AgencyFactory(name="Host PD", latitude=41.76058, longitude=-88.32007, city="Aurora")
    member = AgencyFactory(name="Member PD")
    team = SpecialTeamFactory(agency=host, name="Host <SRT>", members=24, level=2)
    TeamMembershipFactory(team=team, agency=member, officers=4)
    ContactFactory(agency=host, name="Pat Primary", role=Contact.Role.PRIMARY, title="Chief")
    ContactFactory(agency=host, name="Alex Alternate")
    client.force_login(official)
    page = client.get(host.get_absolute_url()).text
    assert "Host &lt;SRT&gt;" in page  # user text is escaped
    assert "Type 2" in page and "24" in page
    assert "Member PD" in page and "(4)" in page
    assert "Pat Primary" not in page and "2 contacts on file" in page  # officials: counts only
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    page = client.get(host.get_absolute_url()).text
    assert page.index("Pat Primary") < page.index("Alex Alternate")  # primary listed first
    assert "41.7606, -88.3201" in page
    member_page = client.get(member.get_absolute_url()).text
    assert "4 officers to <strong>Host &lt;SRT&gt;</strong>" in member_page
    assert "No contact on file" in member_page


def test_agency_page_query_count(client, official, agency, django_assert_max_num_queries):
    for _ in range(5):
        team = SpecialTeamFactory(agency=agency)
        TeamMembershipFactory(team=team)
        ContactFactory(agency=agency)
    client.force_login(official)
    with django_assert_max_num_queries(8):
        assert client.get(agency.get_absolute_url()).status_code == 200


def test_unknown_agency_is_404(client, official):
    client.force_login(official)
    assert client.get(reverse("agencies:agency-detail", args=[999999])).status_code == 404


# The upload page ----------------------------------------------------------------------------

GOOD = (
    "record,key,agency,name,kind,region,latitude,longitude,sworn_officers,email,contact_role\n"
    "agency,new-pd,,New Police Department,municipal,North,41.9,-88.1,50,,\n"
    "contact,,new-pd,Sam Chief,,,,,,sam@new-pd.example,primary\n"
)
BAD = (
    "record,key,agency,name,kind,region,latitude,longitude,sworn_officers\n"
    "agency,ok-pd,,OK Police Department,municipal,North,41.9,-88.1,50\n"
    "agency,bad-pd,,,municipal,Nowhere,91,-88.1,-4\n"
    "agency,<script>x</script>,,Script PD,municipal,North,41,-88,1\n"
)


def upload(client, content: str | bytes, **extra):
    data = content.encode() if isinstance(content, str) else content
    return client.post(
        IMPORT, {"file": SimpleUploadedFile("registry.csv", data, "text/csv"), **extra}
    )


@pytest.mark.parametrize("who", ["commander", "official"])
def test_only_coordinators_import(client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(IMPORT).status_code == 403
    RegionFactory(name="North")
    assert upload(client, GOOD).status_code == 403
    assert not Agency.objects.filter(code="new-pd").exists()


def test_coordinator_imports_a_good_file(client, coordinator):
    RegionFactory(name="North")
    client.force_login(coordinator)
    response = upload(client, GOOD)
    assert response.status_code == 200
    assert "Imported" in response.text
    assert "Agencies: 1 created" in response.text
    agency = Agency.objects.get(code="new-pd")
    assert agency.contacts.get().role == Contact.Role.PRIMARY
    again = upload(client, GOOD)
    assert "Agencies: 0 created, 0 updated, 1 unchanged" in again.text


def test_bad_file_changes_nothing_and_lists_every_line(client, coordinator):
    RegionFactory(name="North")
    client.force_login(coordinator)
    response = upload(client, BAD)
    assert response.status_code == 422
    assert not Agency.objects.exists()
    errors = response.context["result"].errors
    assert [e.line for e in errors] == [3, 4]
    assert "missing name" in errors[0].message
    assert "unknown region" in errors[0].message
    assert "sworn_officers -4 is negative" in errors[0].message
    assert "Nothing was imported: 2 problems" in response.text
    assert "<script>x</script>" not in response.text  # escaped in the error list


def test_dry_run_writes_nothing(client, coordinator):
    RegionFactory(name="North")
    client.force_login(coordinator)
    response = upload(client, GOOD, dry_run="on")
    assert "Check passed: nothing was written" in response.text
    assert "1 to create" in response.text
    assert not Agency.objects.exists()


def test_not_utf8_and_missing_file_get_clear_errors(client, coordinator):
    client.force_login(coordinator)
    response = upload(client, "name\nCaf\xe9".encode("latin-1"))
    assert response.status_code == 422
    assert "not UTF-8" in response.text
    response = client.post(IMPORT, {})
    assert response.status_code == 422
    assert "This field is required" in response.text


def test_import_needs_csrf(coordinator):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(coordinator)
    RegionFactory(name="North")
    assert upload(client, GOOD).status_code == 403
    assert not Agency.objects.exists()


def test_example_file_downloads_and_imports(client, coordinator):
    for name in ("Region 1 - Northeast",):
        RegionFactory(name=name)
    client.force_login(coordinator)
    response = client.get(reverse("agencies:import-example"))
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    result = upload(client, content)
    assert result.status_code == 200, result.context["result"].errors
    assert Agency.objects.count() == 3


def test_healthz(client, db):
    response = client.get(reverse("healthz"))
    assert response.json() == {"status": "ok"}


def test_sorting(client, official):
    big = AgencyFactory(name="Big PD", sworn_officers=900, region=RegionFactory(name="B"))
    small = AgencyFactory(
        name="Small PD", sworn_officers=20, min_home_staffing=5, region=RegionFactory(name="A")
    )
    SpecialTeamFactory(agency=small, members=40)
    client.force_login(official)
    assert names(client.get(LIST, {"sort": "-sworn"})) == [big.name, small.name]
    assert names(client.get(LIST, {"sort": "-team_officers"})) == [small.name, big.name]
    assert names(client.get(LIST, {"sort": "region"})) == [small.name, big.name]
    assert names(client.get(LIST, {"sort": "name"})) == [big.name, small.name]
