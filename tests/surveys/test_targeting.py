"""Who a poll asks: each target filter, combinations, radius, hand-picked, inactive, no contact."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agencies.models import Agency, Contact
from surveys import compose, selectors
from surveys.geo import distance_km, travel_minutes
from surveys.models import Invitation, Poll
from tests.factories import (
    AgencyFactory,
    ContactFactory,
    RegionFactory,
    SpecialTeamFactory,
    TeamMembershipFactory,
    TeamTypeFactory,
    TeamTypeLevelFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
CHICAGO = (41.8837, -87.6319)


def make_poll(**fields) -> Poll:
    defaults = {
        "title": "Critical situations in Chicago",
        "message": "Would members of your special teams respond?",
        "destination_name": "Chicago",
        "destination_latitude": CHICAGO[0],
        "destination_longitude": CHICAGO[1],
        "deadline": timezone.now() + timedelta(days=2),
        "created_by": UserFactory(role="coordinator"),
    }
    return Poll.objects.create(**{**defaults, **fields})


def names(poll) -> list[str]:
    return sorted(a.name for a in selectors.poll_recipients(poll=poll))


@pytest.fixture
def illinois():
    north, south = RegionFactory(name="North"), RegionFactory(name="South")
    swat, k9 = TeamTypeFactory(code="swat"), TeamTypeFactory(code="k9")
    TeamTypeLevelFactory(team_type=swat, level=1)
    TeamTypeLevelFactory(team_type=swat, level=2)
    near = AgencyFactory(name="Evanston PD", region=north, latitude=42.0411, longitude=-87.6901)
    far = AgencyFactory(name="Carbondale PD", region=south, latitude=37.7273, longitude=-89.2168)
    sheriff = AgencyFactory(
        name="Will County SO", region=north, kind=Agency.Kind.SHERIFF,
        latitude=41.4459, longitude=-87.9789,
    )  # fmt: skip
    SpecialTeamFactory(agency=near, team_type=swat, level=2)
    SpecialTeamFactory(agency=far, team_type=k9, level=1, members=2)
    host_team = SpecialTeamFactory(agency=sheriff, team_type=swat, level=1, members=30)
    small = AgencyFactory(name="Small Town PD", region=south, latitude=38.5, longitude=-89.5)
    TeamMembershipFactory(team=host_team, agency=small, officers=3)
    for agency in (near, far, sheriff, small):
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    return {"north": north, "south": south, "swat": swat, "k9": k9}


def test_each_filter(illinois):
    assert names(make_poll()) == []  # no filter and no agency picked: nobody
    poll = make_poll()
    poll.target_regions.add(illinois["north"])
    assert names(poll) == ["Evanston PD", "Will County SO"]
    poll = make_poll(target_kinds=["sheriff"])
    assert names(poll) == ["Will County SO"]
    poll = make_poll()
    poll.target_team_types.add(illinois["k9"])
    assert names(poll) == ["Carbondale PD"]
    poll = make_poll()
    poll.target_team_types.add(illinois["swat"])  # hosts a SWAT team, or contributes to one
    assert names(poll) == ["Evanston PD", "Small Town PD", "Will County SO"]
    poll = make_poll()
    poll.target_levels.add(illinois["swat"].levels.get(level=1))
    assert names(poll) == ["Small Town PD", "Will County SO"]
    poll = make_poll(target_radius_km=60)
    assert names(poll) == ["Evanston PD", "Will County SO"]


def test_filters_combine_and_hand_picked_are_added(illinois):
    poll = make_poll(target_radius_km=60, target_kinds=["municipal"])
    assert names(poll) == ["Evanston PD"]
    poll.target_agencies.add(Agency.objects.get(name="Carbondale PD"))
    assert names(poll) == ["Carbondale PD", "Evanston PD"]
    only_picked = make_poll()
    only_picked.target_agencies.add(Agency.objects.get(name="Small Town PD"))
    assert names(only_picked) == ["Small Town PD"]


def test_inactive_agencies_and_teams_are_left_out(illinois):
    Agency.objects.filter(name="Evanston PD").update(active=False)
    poll = make_poll()
    poll.target_regions.add(illinois["north"])
    assert names(poll) == ["Will County SO"]
    poll.target_agencies.add(Agency.objects.get(name="Evanston PD"))  # even hand-picked
    assert names(poll) == ["Will County SO"]
    Agency.objects.filter(name="Will County SO").get().teams.update(active=False)
    swat_poll = make_poll()
    swat_poll.target_team_types.add(illinois["swat"])
    assert names(swat_poll) == []


def test_distance_and_travel_estimate(illinois):
    poll = make_poll(target_radius_km=1000)
    by_name = {a.name: a for a in selectors.poll_recipients(poll=poll)}
    evanston = by_name["Evanston PD"]
    expected = distance_km(*CHICAGO, 42.0411, -87.6901)
    assert evanston.distance_km == pytest.approx(expected, abs=0.1)
    assert 15 < expected < 25
    # Nearest first.
    assert next(iter(by_name)) == "Evanston PD"
    # 1.25 road factor at 90 km/h: 100 km of straight line is 84 minutes.
    assert travel_minutes(100) == 84


def test_agencies_without_a_usable_contact_are_previewed_but_not_invited(illinois):
    Contact.objects.filter(agency__name="Evanston PD").update(active=False)
    alternate_only = AgencyFactory(name="Alternate Only PD", region=illinois["north"])
    ContactFactory(agency=alternate_only, role=Contact.Role.ALTERNATE)
    poll = make_poll()
    poll.target_regions.add(illinois["north"])
    preview = {a.name: a.primary_contacts for a in selectors.poll_recipients(poll=poll)}
    assert preview["Evanston PD"] == [] and preview["Alternate Only PD"] == []
    assert compose.poll_send(poll=poll) == 1
    assert list(Invitation.objects.values_list("agency__name", flat=True)) == ["Will County SO"]


def test_send_stores_distance_and_estimate_once(illinois, django_capture_on_commit_callbacks):
    poll = make_poll(target_radius_km=60)
    with django_capture_on_commit_callbacks() as callbacks:
        assert compose.poll_send(poll=poll) == 2
    assert len(callbacks) == 1  # one delivery task for this small poll, queued after commit
    invitation = Invitation.objects.get(agency__name="Evanston PD")
    assert invitation.state == Invitation.State.QUEUED
    assert invitation.distance_km == pytest.approx(
        distance_km(*CHICAGO, 42.0411, -87.6901), abs=0.1
    )
    assert invitation.travel_minutes == travel_minutes(invitation.distance_km)
    poll.refresh_from_db()
    assert poll.state == Poll.State.OPEN and poll.sent_at is not None
    with pytest.raises(compose.PollNotDraft):
        compose.poll_send(poll=poll)
    assert Invitation.objects.count() == 2


def test_large_polls_are_queued_in_chunks(db, django_capture_on_commit_callbacks):
    region = RegionFactory(name="Big")
    for agency in AgencyFactory.create_batch(250, region=region):
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    poll = make_poll()
    poll.target_regions.add(region)
    with django_capture_on_commit_callbacks() as callbacks:
        assert compose.poll_send(poll=poll) == 250
    assert len(callbacks) == 3  # 100 + 100 + 50


def test_recipient_preview_query_count(illinois, django_assert_max_num_queries):
    poll = make_poll(target_radius_km=2000)
    poll.target_team_types.add(illinois["swat"])
    # the four target lists, the agencies, their primary contacts, their targeted teams
    with django_assert_max_num_queries(7):
        agencies = list(selectors.poll_recipients(poll=poll))
        assert all(hasattr(a, "targeted_teams") for a in agencies)
