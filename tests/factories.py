import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP
from factory.django import DjangoModelFactory

from agencies.models import (
    Agency,
    Contact,
    Region,
    SpecialTeam,
    TeamMembership,
    TeamType,
    TeamTypeLevel,
)
from readiness import permissions
from readiness.models import User

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # tests compute codes from it


class RegionFactory(DjangoModelFactory):
    class Meta:
        model = Region
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Region {n}")


class AgencyFactory(DjangoModelFactory):
    class Meta:
        model = Agency

    code = factory.Sequence(lambda n: f"agency-{n}")
    name = factory.Sequence(lambda n: f"Town {n} Police Department")
    kind = Agency.Kind.MUNICIPAL
    region = factory.SubFactory(RegionFactory)
    city = factory.Sequence(lambda n: f"Town {n}")
    county = "Cook County"
    latitude = 41.5
    longitude = -88.0
    sworn_officers = 100
    min_home_staffing = 40


class TeamTypeFactory(DjangoModelFactory):
    """Team types are seeded by a migration; this returns the seeded row for a known code."""

    class Meta:
        model = TeamType
        django_get_or_create = ("code",)

    code = "swat"
    name = factory.LazyAttribute(lambda o: o.code.upper())


class TeamTypeLevelFactory(DjangoModelFactory):
    class Meta:
        model = TeamTypeLevel
        django_get_or_create = ("team_type", "level")

    team_type = factory.SubFactory(TeamTypeFactory)
    level = 1
    min_personnel = 10


class SpecialTeamFactory(DjangoModelFactory):
    class Meta:
        model = SpecialTeam

    code = factory.Sequence(lambda n: f"team-{n}")
    name = factory.Sequence(lambda n: f"Team {n}")
    agency = factory.SubFactory(AgencyFactory)
    team_type = factory.SubFactory(TeamTypeFactory)
    level = 2
    members = 20


class TeamMembershipFactory(DjangoModelFactory):
    class Meta:
        model = TeamMembership

    team = factory.SubFactory(SpecialTeamFactory)
    agency = factory.SubFactory(AgencyFactory)
    officers = 4


class ContactFactory(DjangoModelFactory):
    class Meta:
        model = Contact

    agency = factory.SubFactory(AgencyFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    title = "Lieutenant"
    email = factory.Sequence(lambda n: f"contact{n}@agency.example")
    phone = "(312) 555-0100"
    role = Contact.Role.ALTERNATE


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@readiness.example")
    full_name = factory.Sequence(lambda n: f"User {n}")
    role = User.Role.OFFICIAL
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)

    @factory.post_generation
    def mfa(obj, create, extracted, **kwargs):
        """Two-factor on for the roles that require it, unless mfa=False is passed."""
        if not create:
            return
        wanted = permissions.mfa_required(obj) if extracted is None else extracted
        if wanted:
            TOTP.activate(obj, TOTP_SECRET)
