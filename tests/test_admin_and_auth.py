"""The admin (coordinators only, every model searchable and filterable) and signing in."""

import pytest
from django.contrib import admin
from django.urls import reverse

from readiness.models import User
from tests.factories import (
    AgencyFactory,
    ContactFactory,
    SpecialTeamFactory,
    TeamMembershipFactory,
    TeamTypeFactory,
    UserFactory,
)

REGISTRY_MODELS = [
    m for m in admin.site._registry if m._meta.app_label in ("agencies", "readiness")
]


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_registry_model_is_in_the_admin():
    names = {m.__name__ for m in REGISTRY_MODELS}
    assert names == {
        "Region",
        "Agency",
        "TeamType",
        "TeamTypeLevel",
        "SpecialTeam",
        "TeamMembership",
        "Contact",
        "Qualification",
        "User",
    }
    # Rosters are not there: members' names are their agency commander's.
    assert "TeamMember" not in names


@pytest.fixture
def admin_coordinator(db):
    return UserFactory(role=User.Role.COORDINATOR, is_staff=True)


@pytest.mark.parametrize("model", REGISTRY_MODELS, ids=lambda m: m.__name__)
def test_coordinator_lists_searches_and_adds(client, admin_coordinator, model):
    team = SpecialTeamFactory()
    TeamMembershipFactory(team=team)
    ContactFactory(agency=team.agency)
    client.force_login(admin_coordinator)
    url = changelist(model)
    assert client.get(url).status_code == 200
    model_admin = admin.site._registry[model]
    if model_admin.search_fields:
        assert client.get(url, {"q": "Town"}).status_code == 200
    add = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
    # People are invited (People page), not created with a password in the admin.
    assert client.get(add).status_code == (403 if model is User else 200)


def test_agency_changelist_filters_by_team_type_without_duplicates(client, admin_coordinator):
    agency = AgencyFactory()
    SpecialTeamFactory(agency=agency)
    SpecialTeamFactory(agency=agency)
    client.force_login(admin_coordinator)
    team_type = agency.teams.first().team_type
    response = client.get(
        changelist(agency.__class__), {"teams__team_type__id__exact": team_type.pk}
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [agency]


@pytest.mark.parametrize("role", [User.Role.COMMANDER, User.Role.OFFICIAL])
def test_staff_flag_alone_does_not_open_the_admin(client, role, agency):
    user = UserFactory(role=role, agency=agency, is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:index")).context["available_apps"] == []
    assert client.get(changelist(agency.__class__)).status_code == 403


def test_users_cannot_be_deleted_from_the_admin(client, admin_coordinator, official):
    client.force_login(admin_coordinator)
    url = reverse("admin:readiness_user_delete", args=[official.pk])
    assert client.get(url).status_code == 403


def test_security_headers_on_pages(client, official):
    client.force_login(official)
    response = client.get(reverse("agencies:agency-list"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def team_post(team, **changes) -> dict:
    data = {
        "code": team.code,
        "name": team.name,
        "agency": team.agency_id,
        "team_type": team.team_type_id,
        "level": team.level,
        "members": team.members,
        "active": "on",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


def test_admin_refuses_a_level_the_team_type_lacks(client, admin_coordinator):
    team = SpecialTeamFactory(team_type=TeamTypeFactory(code="swat"), level=2)
    client.force_login(admin_coordinator)
    url = reverse("admin:agencies_specialteam_change", args=[team.pk])
    response = client.post(url, team_post(team, level=7))
    assert response.status_code == 200
    assert "has no Type 7" in response.text
    team.refresh_from_db()
    assert team.level == 2


def test_admin_refuses_members_beyond_the_team_or_the_host_as_member(client, admin_coordinator):
    team = SpecialTeamFactory(members=10)
    other = AgencyFactory()
    client.force_login(admin_coordinator)
    url = reverse("admin:agencies_specialteam_change", args=[team.pk])
    too_many = team_post(
        team,
        **{
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-agency": other.pk,
            "memberships-0-officers": "11",
        },
    )
    assert "contribute 11 officers but the team has 10" in client.post(url, too_many).text
    host = team_post(
        team,
        **{
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-agency": team.agency_id,
            "memberships-0-officers": "2",
        },
    )
    assert "not also a member agency" in client.post(url, host).text
    assert not team.memberships.exists()
    ok = team_post(
        team,
        **{
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-agency": other.pk,
            "memberships-0-officers": "4",
        },
    )
    assert client.post(url, ok).status_code == 302
    assert list(team.memberships.values_list("agency_id", "officers")) == [(other.pk, 4)]


POLL_MODELS = ["poll", "invitation", "reply"]


@pytest.mark.parametrize("name", POLL_MODELS)
def test_polls_invitations_and_answers_are_read_only_in_the_admin(client, admin_coordinator, name):
    from surveys import replies
    from surveys.models import Invitation, Reply
    from tests.surveys.factories import open_invitation

    invitation, _ = open_invitation()
    team = SpecialTeamFactory(agency=invitation.agency, members=10)
    replies.reply_submit(
        poll=invitation.poll, agency=invitation.agency,
        answer={"decision": "available", "authorised_by_name": "Pat",
                "authorised_by_rank": "Chief"},
        lines=[{"team": team, "estimate": 30, "officers": 4, "depart_minutes": 5,
                "travel_minutes": 30}],
        base_version=0, invitation=invitation, confirm=False,
    )  # fmt: skip
    obj = {"poll": invitation.poll, "invitation": invitation, "reply": Reply.objects.get()}[name]
    client.force_login(admin_coordinator)
    listing = client.get(reverse(f"admin:surveys_{name}_changelist"))
    assert listing.status_code == 200 and "Add " not in listing.text.split("<h1")[1][:300]
    page = client.get(reverse(f"admin:surveys_{name}_change", args=[obj.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.text  # a view, not a form
    if name == "invitation":
        assert invitation.token_hash not in page.text  # no link hash, not even hashed
    assert client.get(reverse(f"admin:surveys_{name}_add")).status_code == 403
    assert client.post(reverse(f"admin:surveys_{name}_delete", args=[obj.pk]),
                       {"post": "yes"}).status_code == 403  # fmt: skip
    assert Invitation.objects.filter(pk=invitation.pk).exists()


@pytest.mark.parametrize("role", [User.Role.COMMANDER, User.Role.OFFICIAL])
def test_only_coordinators_see_polls_in_the_admin(client, role, agency):
    client.force_login(UserFactory(role=role, agency=agency, is_staff=True))
    assert client.get(reverse("admin:surveys_poll_changelist")).status_code == 403
