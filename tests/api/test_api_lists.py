"""The API's lists: query counts that do not grow with the rows, filters, pages and ordering."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agencies.models import Agency, Qualification, TeamMember
from readiness.api.urls import router
from readiness.models import User
from surveys.models import Reply, ReplyLine
from tests.factories import (
    AgencyFactory,
    ContactFactory,
    RegionFactory,
    SpecialTeamFactory,
    TeamMembershipFactory,
    TeamTypeFactory,
    UserFactory,
)
from tests.surveys.factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db

LISTS = sorted(f"api:{basename}-list" for _, _, basename in router.registry)


def grow(count: int, poll) -> None:
    """`count` agencies, each with two teams (one shared with a member agency), a contact, an
    invitation to `poll` and an answer with a line per team."""
    swat = TeamTypeFactory(code="swat")
    for _ in range(count):
        agency = AgencyFactory()
        teams = [SpecialTeamFactory(agency=agency, team_type=swat) for _ in range(2)]
        TeamMembershipFactory(team=teams[0], agency=AgencyFactory())
        member = TeamMember.objects.create(team=teams[0], agency=agency, name="Member")
        member.qualifications.create(qualification=Qualification.objects.first())
        ContactFactory(agency=agency)
        open_invitation(agency=agency, poll=poll)
        reply = Reply.objects.create(
            poll=poll, agency=agency, decision="available", officers=10,
            created_at=timezone.now(), updated_at=timezone.now(),
        )  # fmt: skip
        for team in teams:
            ReplyLine.objects.create(
                reply=reply, poll=poll, team=team, officers=5, depart_minutes=10,
                travel_minutes=20, arrival_minutes=30, estimated_travel_minutes=20,
                decision=reply.decision, team_type_id=team.team_type_id, team_level=team.level,
            )  # fmt: skip
    PollFactory(target_agencies=list(Agency.objects.all()[:3]))


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"page_size": 500})
    assert response.status_code == 200, response.content
    return len(captured)


def test_every_list_is_on_the_query_count_check():
    assert LISTS == [
        "api:agency-list", "api:contact-list", "api:invitation-list", "api:poll-list",
        "api:region-list", "api:reply-list", "api:team-list", "api:team-member-list",
        "api:team-type-list",
    ]  # fmt: skip


@pytest.mark.parametrize("name", LISTS)
def test_list_queries_do_not_grow_with_the_rows(
    client, name, django_assert_max_num_queries, settings
):
    settings.ROSTER_NAMES_TO_COORDINATORS = True  # so that coordinators list team members
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    poll = PollFactory(state="open", sent_at=timezone.now())
    grow(2, poll)
    few = queries(client, reverse(name))
    grow(12, poll)
    with django_assert_max_num_queries(few):
        many = queries(client, reverse(name))
    assert many == few
    assert few <= 12


def test_agencies_filter_by_region_kind_team_type_and_text(client):
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    north, south = RegionFactory(name="North"), RegionFactory(name="South")
    swat, k9 = TeamTypeFactory(code="swat"), TeamTypeFactory(code="k9")
    elgin = AgencyFactory(name="Elgin Police Department", region=north, kind="municipal")
    kane = AgencyFactory(name="Kane County Sheriff", region=north, kind="sheriff")
    cairo = AgencyFactory(name="Cairo Police Department", region=south, kind="municipal")
    SpecialTeamFactory(agency=elgin, team_type=swat)
    SpecialTeamFactory(agency=kane, team_type=k9)
    SpecialTeamFactory(agency=cairo, team_type=swat, active=False)
    url = reverse("api:agency-list")

    def names(**params):
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        return [a["name"] for a in response.json()["results"]]

    assert names(region=north.pk) == ["Elgin Police Department", "Kane County Sheriff"]
    assert names(kind="municipal", ordering="-name") == [
        "Elgin Police Department", "Cairo Police Department"
    ]  # fmt: skip
    assert names(team_type=swat.pk) == ["Elgin Police Department"]  # Cairo's SWAT is inactive
    assert names(team_type=[swat.pk, k9.pk]) == ["Elgin Police Department", "Kane County Sheriff"]
    assert names(q="cairo") == ["Cairo Police Department"]
    Agency.objects.filter(pk=kane.pk).update(updated_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert "Kane County Sheriff" not in names(updated_since=since)
    bad = client.get(url, {"region": 999999})
    assert bad.status_code == 400 and "region" in bad.json()["errors"]
    assert client.get(url, {"kind": "navy"}).status_code == 400


def test_teams_and_replies_filter(client):
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    swat, k9 = TeamTypeFactory(code="swat"), TeamTypeFactory(code="k9")
    invitation, _ = open_invitation()
    agency = invitation.agency
    team = SpecialTeamFactory(agency=agency, team_type=swat, level=1)
    SpecialTeamFactory(agency=agency, team_type=k9, level=2)
    reply = Reply.objects.create(
        poll=invitation.poll, agency=agency, decision="available", officers=5,
        created_at=timezone.now(), updated_at=timezone.now(),
    )  # fmt: skip
    ReplyLine.objects.create(
        reply=reply, poll=invitation.poll, team=team, officers=5, depart_minutes=0,
        travel_minutes=30, arrival_minutes=30, estimated_travel_minutes=30,
        decision=reply.decision, team_type=swat, team_level=1,
    )  # fmt: skip
    teams = client.get(reverse("api:team-list"), {"team_type": swat.pk, "level": 1}).json()
    assert [t["id"] for t in teams["results"]] == [team.pk]
    url = reverse("api:reply-list")
    assert client.get(url, {"team_type": swat.pk}).json()["count"] == 1
    assert client.get(url, {"team_type": k9.pk}).json()["count"] == 0
    assert client.get(url, {"decision": "unavailable"}).json()["count"] == 0
    assert client.get(url, {"region": agency.region_id}).json()["count"] == 1
    invitations = client.get(reverse("api:invitation-list"), {"replied": "false"}).json()
    assert invitations["count"] == 1  # `replied` follows replied_at, set by the reply form


def test_a_text_invitation_has_no_email_address_rather_than_an_empty_one(client):
    """The schema says an invitation's email is an address or null: a text invitation's is
    null, and its number is given (an empty string is no email address)."""
    from surveys.models import Invitation

    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    by_email, _ = open_invitation()
    Invitation.objects.filter(pk=by_email.pk).update(channel="sms", email="", mobile="+13125550177")
    shown = client.get(reverse("api:invitation-detail", args=[by_email.pk])).json()
    assert (shown["channel"], shown["email"], shown["mobile"]) == ("sms", None, "+13125550177")
    listed = client.get(reverse("api:invitation-list")).json()["results"]
    assert [i["email"] for i in listed] == [None]


def test_pages_and_their_limits(client):
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    for _ in range(7):
        AgencyFactory()
    url = reverse("api:agency-list")
    first = client.get(url, {"page_size": 3}).json()
    assert first["count"] == 7 and len(first["results"]) == 3
    assert "page=2" in first["next"] and first["previous"] is None
    last = client.get(url, {"page_size": 3, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    beyond = client.get(url, {"page_size": 3, "page": 9})
    assert beyond.status_code == 404 and beyond.json()["code"] == "not_found"
    assert len(client.get(url, {"page_size": 100000}).json()["results"]) == 7  # capped at 500
