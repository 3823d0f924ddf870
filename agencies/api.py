"""The registry through the API: regions, team types, agencies with their teams, special teams
and (for coordinators) contacts. Read-only, like the registry pages: the registry changes by
import and in the admin."""

import django_filters
from django.db.models import Exists, OuterRef, Prefetch, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, viewsets

from readiness import permissions
from readiness.api.filters import DateTimeFilter, IdFilter, IdsFilter

from .models import (
    Agency,
    Contact,
    Region,
    SpecialTeam,
    TeamMembership,
    TeamType,
    TeamTypeLevel,
)

# Serializers ------------------------------------------------------------------------------------


class RegionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Region
        fields = ["id", "name", "description"]


class TeamTypeLevelSerializer(serializers.ModelSerializer):
    class Meta:
        model = TeamTypeLevel
        fields = ["id", "level", "min_personnel", "description"]


class TeamTypeSerializer(serializers.ModelSerializer):
    levels = TeamTypeLevelSerializer(many=True, read_only=True)

    class Meta:
        model = TeamType
        fields = ["id", "code", "name", "description", "sort_order", "levels"]


class RefSerializer(serializers.Serializer):
    """Another object, by id and name."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class TeamTypeRefSerializer(RefSerializer):
    code = serializers.CharField(read_only=True)


class AgencyTeamSerializer(serializers.ModelSerializer):
    """A team as listed with its agency."""

    team_type = TeamTypeRefSerializer(read_only=True)

    class Meta:
        model = SpecialTeam
        fields = ["id", "code", "name", "team_type", "level", "members", "active"]


class TeamMembershipSerializer(serializers.Serializer):
    agency = RefSerializer(read_only=True)
    officers = serializers.IntegerField(read_only=True)


class SpecialTeamSerializer(serializers.ModelSerializer):
    agency = RefSerializer(read_only=True)
    team_type = TeamTypeRefSerializer(read_only=True)
    member_agencies = TeamMembershipSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = SpecialTeam
        fields = [
            "id", "code", "name", "agency", "team_type", "level", "members", "member_agencies",
            "commander_name", "commander_phone", "notes", "active", "created_at", "updated_at",
        ]  # fmt: skip


class AgencySerializer(serializers.ModelSerializer):
    region = RefSerializer(read_only=True)
    deployable_officers = serializers.IntegerField(read_only=True)
    teams = AgencyTeamSerializer(many=True, read_only=True)

    class Meta:
        model = Agency
        fields = [
            "id", "code", "name", "kind", "region", "county", "city", "address", "latitude",
            "longitude", "sworn_officers", "min_home_staffing", "deployable_officers", "active",
            "teams", "created_at", "updated_at",
        ]  # fmt: skip


class ContactSerializer(serializers.ModelSerializer):
    agency = RefSerializer(read_only=True)

    class Meta:
        model = Contact
        fields = [
            "id", "agency", "name", "title", "email", "phone", "role", "active",
            "created_at", "updated_at",
        ]  # fmt: skip


# Filters ----------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)  # each value's: the parameter is an array of them
class TeamTypeFilter(IdsFilter):
    """Team type ids, repeated for several (filtered by the filter set's own method)."""


class UpdatedSinceFilterSet(django_filters.FilterSet):
    updated_since = DateTimeFilter(
        field_name="updated_at", lookup_expr="gte", label="Changed at or after (ISO 8601)."
    )


class AgencyFilter(UpdatedSinceFilterSet):
    region = IdsFilter(queryset=Region.objects.all(), label="Region ids (repeat for several).")
    kind = django_filters.MultipleChoiceFilter(choices=Agency.Kind.choices)
    team_type = TeamTypeFilter(
        queryset=TeamType.objects.all(),
        method="filter_team_type",
        label="Agencies with an active team of these type ids.",
    )
    active = django_filters.BooleanFilter()
    q = django_filters.CharFilter(method="filter_q", label="Name, code or city contains.")

    class Meta:
        model = Agency
        fields = ["region", "kind", "team_type", "active", "updated_since", "q"]

    def filter_team_type(self, queryset, name, value):
        if not value:
            return queryset
        teams = SpecialTeam.objects.filter(agency=OuterRef("pk"), active=True, team_type__in=value)
        return queryset.filter(Exists(teams))

    def filter_q(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value) | Q(code__icontains=value) | Q(city__icontains=value)
        )


class TeamFilter(UpdatedSinceFilterSet):
    agency = IdFilter(field_name="agency_id")
    region = IdsFilter(field_name="agency__region", queryset=Region.objects.all())
    kind = django_filters.MultipleChoiceFilter(
        field_name="agency__kind", choices=Agency.Kind.choices
    )
    team_type = IdsFilter(queryset=TeamType.objects.all())
    level = django_filters.NumberFilter()
    active = django_filters.BooleanFilter()

    class Meta:
        model = SpecialTeam
        fields = ["agency", "region", "kind", "team_type", "level", "active", "updated_since"]


class ContactFilter(UpdatedSinceFilterSet):
    agency = IdFilter(field_name="agency_id")
    region = IdsFilter(field_name="agency__region", queryset=Region.objects.all())
    role = django_filters.ChoiceFilter(choices=Contact.Role.choices)
    active = django_filters.BooleanFilter()

    class Meta:
        model = Contact
        fields = ["agency", "region", "role", "active", "updated_since"]


# Views ------------------------------------------------------------------------------------------


class RegionViewSet(viewsets.ReadOnlyModelViewSet):
    """Mutual-aid regions."""

    queryset = Region.objects.all()
    serializer_class = RegionSerializer
    rules = {"read": permissions.can_view_registry}
    ordering_fields = ["name", "id"]


class TeamTypeViewSet(viewsets.ReadOnlyModelViewSet):
    """Special team types and their NIMS levels."""

    queryset = TeamType.objects.prefetch_related("levels")
    serializer_class = TeamTypeSerializer
    rules = {"read": permissions.can_view_registry}
    ordering_fields = ["sort_order", "name", "id"]


class AgencyViewSet(viewsets.ReadOnlyModelViewSet):
    """Agencies with their special teams. Commanders see their own agency only."""

    serializer_class = AgencySerializer
    rules = {"read": permissions.can_view_registry}
    filterset_class = AgencyFilter
    ordering_fields = ["name", "code", "updated_at", "sworn_officers", "id"]

    def get_queryset(self):
        teams = SpecialTeam.objects.select_related("team_type").order_by(
            "team_type__sort_order", "name"
        )
        agencies = Agency.objects.select_related("region").prefetch_related(
            Prefetch("teams", queryset=teams)
        )
        return permissions.scope_agencies(self.request.user, agencies)


class SpecialTeamViewSet(viewsets.ReadOnlyModelViewSet):
    """Special teams, with the agencies that contribute to multi-agency ones."""

    serializer_class = SpecialTeamSerializer
    rules = {"read": permissions.can_view_registry}
    filterset_class = TeamFilter
    ordering_fields = ["name", "code", "members", "updated_at", "id"]

    def get_queryset(self):
        teams = SpecialTeam.objects.select_related("agency", "team_type").prefetch_related(
            Prefetch("memberships", queryset=TeamMembership.objects.select_related("agency"))
        )
        return permissions.scope_to_agency(self.request.user, teams)


class ContactViewSet(viewsets.ReadOnlyModelViewSet):
    """The people polls are sent to. Coordinators only."""

    queryset = Contact.objects.select_related("agency")
    serializer_class = ContactSerializer
    rules = {"read": permissions.can_view_contacts}
    filterset_class = ContactFilter
    ordering_fields = ["name", "email", "updated_at", "id"]
