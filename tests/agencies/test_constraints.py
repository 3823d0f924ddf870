"""Database constraints of the registry (the DB refuses bad rows) and the seeded team types."""

import pytest
from django.db import IntegrityError, transaction

from agencies.models import Agency, Contact, SpecialTeam, TeamMembership, TeamType, TeamTypeLevel
from readiness.models import User
from tests.factories import (
    AgencyFactory,
    ContactFactory,
    SpecialTeamFactory,
    TeamMembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def refused(queryset, **values) -> bool:
    """True if the database refuses `queryset.update(**values)` (model validation is bypassed)."""
    try:
        with transaction.atomic():
            queryset.update(**values)
    except IntegrityError:
        return True
    return False


def refused_create(model, **values) -> bool:
    try:
        with transaction.atomic():
            model.objects.create(**values)
    except IntegrityError:
        return True
    return False


def test_team_needs_at_least_one_member():
    team = SpecialTeamFactory(members=20)
    rows = SpecialTeam.objects.filter(pk=team.pk)

    assert refused(rows, members=0)
    assert refused(rows, members=-1)
    assert refused(rows, level=0)
    assert not refused(rows, level=None)  # untyped is allowed
    team.refresh_from_db()
    assert team.members == 20


def test_team_name_unique_per_agency_case_insensitively(agency):
    SpecialTeamFactory(agency=agency, name="North SRT")

    assert refused_create(
        SpecialTeam,
        code="other-code",
        name="north srt",
        agency=agency,
        team_type=TeamType.objects.get(code="swat"),
        members=5,
    )
    SpecialTeamFactory(name="North SRT")  # same name at another agency is fine


def test_home_staffing_cannot_exceed_sworn(agency):
    rows = Agency.objects.filter(pk=agency.pk)

    assert refused(rows, sworn_officers=10, min_home_staffing=11)
    assert not refused(rows, sworn_officers=10, min_home_staffing=10)


@pytest.mark.parametrize(
    "values",
    [{"latitude": 91}, {"latitude": -91}, {"longitude": -181}, {"longitude": 181}],
)
def test_coordinates_must_be_on_earth(agency, values):
    assert refused(Agency.objects.filter(pk=agency.pk), **values)
    agency.refresh_from_db()
    assert (agency.latitude, agency.longitude) == (41.5, -88.0)


def test_agency_code_and_name_are_unique(agency):
    other = AgencyFactory()
    rows = Agency.objects.filter(pk=other.pk)

    assert refused(rows, code=agency.code)
    assert refused(rows, name=agency.name.upper())
    assert not refused(rows, name=agency.name + " Annex")


def test_one_primary_contact_per_agency(agency, other_agency):
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    second = ContactFactory(agency=agency, role=Contact.Role.ALTERNATE)

    assert refused(Contact.objects.filter(pk=second.pk), role=Contact.Role.PRIMARY)
    with pytest.raises(IntegrityError), transaction.atomic():
        Contact.objects.bulk_create(
            [Contact(agency=agency, name="X", email="x@a.example", role="primary")]
        )
    # A primary at another agency, and any number of alternates, are fine.
    ContactFactory(agency=other_agency, role=Contact.Role.PRIMARY)
    ContactFactory(agency=agency, role=Contact.Role.ALTERNATE)
    assert Contact.objects.filter(role=Contact.Role.PRIMARY).count() == 2
    assert Contact.objects.filter(agency=agency, role=Contact.Role.ALTERNATE).count() == 2


def test_contact_email_unique_per_agency_case_insensitively(agency, other_agency):
    ContactFactory(agency=agency, email="pat.novak@town.example")

    assert refused_create(Contact, agency=agency, name="Pat", email="Pat.Novak@Town.example")
    ContactFactory(agency=other_agency, email="pat.novak@town.example")


def test_membership_officers_positive_and_one_row_per_agency():
    membership = TeamMembershipFactory(officers=4)

    assert refused(TeamMembership.objects.filter(pk=membership.pk), officers=0)
    assert refused_create(
        TeamMembership, team=membership.team, agency=membership.agency, officers=2
    )
    assert TeamMembership.objects.get().officers == 4


def test_team_type_level_unique_and_positive():
    swat = TeamType.objects.get(code="swat")

    assert refused_create(TeamTypeLevel, team_type=swat, level=1, min_personnel=30)
    level = TeamTypeLevel.objects.get(team_type=swat, level=1)
    assert refused(TeamTypeLevel.objects.filter(pk=level.pk), level=0)
    assert refused(TeamTypeLevel.objects.filter(pk=level.pk), min_personnel=0)


def test_commander_must_have_agency(agency):
    assert refused_create(User, email="cmd@readiness.example", role=User.Role.COMMANDER)

    commander = UserFactory(role=User.Role.COMMANDER, agency=agency)
    assert refused(User.objects.filter(pk=commander.pk), agency=None)
    official = UserFactory(role=User.Role.OFFICIAL, agency=None)
    assert refused(User.objects.filter(pk=official.pk), role=User.Role.COMMANDER)


def test_seeded_team_types_have_fema_minimum_personnel():
    levels = {
        (code, level): personnel
        for code, level, personnel in TeamTypeLevel.objects.values_list(
            "team_type__code", "level", "min_personnel"
        )
    }

    assert set(TeamType.objects.values_list("code", flat=True)) == {
        "swat",
        "mff",
        "bomb",
        "k9",
        "dive",
        "negotiation",
        "suas",
        "patrol",
    }
    assert [levels["swat", n] for n in (1, 2, 3)] == [26, 19, 15]
    assert [levels["mff", n] for n in (1, 2)] == [56, 27]
    assert [levels["patrol", n] for n in (1, 2, 3, 4)] == [86, 57, 28, 12]
    assert [levels["bomb", n] for n in (1, 2, 3, 4)] == [2, 2, 2, 2]
    assert levels["dive", 4] == 6
    assert ("swat", 4) not in levels
