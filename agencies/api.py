"""The registry through the API: regions, team types, agencies with their teams, special teams
and contacts. An agency's own commander (and coordinators) keep its staffing, teams and contacts
current and confirm the record, with the pages' forms and services (agencies.upkeep); the
registry as a whole changes by import."""

import django_filters
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.forms.models import model_to_dict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from readiness import permissions
from readiness.api.errors import Conflict
from readiness.api.filters import DateTimeFilter, IdFilter, IdsFilter
from readiness.api.forms import form_errors, json_object, plain_text

from . import rosters, upkeep
from .forms import AgencyFactsForm, ContactForm, MemberForm, TeamForm
from .models import (
    Agency,
    Contact,
    Region,
    SpecialTeam,
    TeamMember,
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
    verified_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the agency last confirmed its record is current (null: never).",
    )

    class Meta:
        model = Agency
        fields = [
            "id", "code", "name", "kind", "region", "county", "city", "address", "latitude",
            "longitude", "sworn_officers", "min_home_staffing", "deployable_officers", "active",
            "teams", "verified_at", "created_at", "updated_at",
        ]  # fmt: skip


class ContactSerializer(serializers.ModelSerializer):
    agency = RefSerializer(read_only=True)

    class Meta:
        model = Contact
        fields = [
            "id", "agency", "name", "title", "email", "mobile", "phone", "channels",
            "quiet_start", "quiet_end", "role", "active", "created_at", "updated_at",
        ]  # fmt: skip


class AgencyFactsSerializer(serializers.Serializer):
    """The figures an agency's commander keeps current; send only those that change."""

    sworn_officers = serializers.IntegerField(required=False)
    min_home_staffing = serializers.IntegerField(required=False)
    address = serializers.CharField(required=False, allow_blank=True)
    city = serializers.CharField(required=False, allow_blank=True)
    county = serializers.CharField(required=False, allow_blank=True)


class TeamWriteSerializer(serializers.Serializer):
    """A team to add (agency, name, team_type and members required) or the fields to change."""

    agency = serializers.IntegerField(required=False, help_text="On create only.")
    name = serializers.CharField(required=False)
    team_type = serializers.IntegerField(required=False)
    level = serializers.IntegerField(required=False, allow_null=True)
    members = serializers.IntegerField(required=False)
    commander_name = serializers.CharField(required=False, allow_blank=True)
    commander_phone = serializers.CharField(required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    active = serializers.BooleanField(required=False)


class ContactWriteSerializer(serializers.Serializer):
    """A contact to add (agency, name and email required) or the fields to change. Making one
    primary demotes the agency's current primary."""

    agency = serializers.IntegerField(required=False, help_text="On create only.")
    name = serializers.CharField(required=False)
    title = serializers.CharField(required=False, allow_blank=True)
    email = serializers.EmailField(required=False)
    mobile = serializers.CharField(
        required=False, allow_blank=True, help_text="Any usual form; stored in E.164."
    )
    phone = serializers.CharField(required=False, allow_blank=True)
    channels = serializers.ChoiceField(choices=Contact.Channels.choices, required=False)
    quiet_start = serializers.TimeField(required=False, allow_null=True)
    quiet_end = serializers.TimeField(required=False, allow_null=True)
    active = serializers.BooleanField(required=False)
    primary = serializers.BooleanField(required=False)


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


class UpkeepMixin:
    """Writes through the pages' forms and agencies.upkeep: the same checks, messages and audit.
    A PATCH changes the fields it sends; the others keep their values."""

    form_class = None
    fields = ()

    def _agency(self, agency_id) -> Agency:
        agency = Agency.objects.filter(pk=agency_id).first() if str(agency_id).isdigit() else None
        if agency is None or not permissions.can_view_agency(self.request.user, agency):
            raise exceptions.ValidationError({"agency": ["No such agency."]})
        if not permissions.can_edit_agency(self.request.user, agency):
            raise exceptions.PermissionDenied("Only the agency's commander or a coordinator.")
        return agency

    def _form(self, instance, *, current: dict, extra: tuple = (), **kwargs):
        data = json_object(self.request.data)
        allowed = {*self.form_class.base_fields, *extra}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise exceptions.ValidationError(
                {name: [f"Cannot be set here; fields: {', '.join(sorted(allowed))}."]
                 for name in unknown}
            )  # fmt: skip
        merged = {**current, **{k: v for k, v in data.items() if k not in extra}}
        form = self.form_class(
            {k: plain_text(v) for k, v in merged.items()}, instance=instance, **kwargs
        )
        if not form.is_valid():
            raise exceptions.ValidationError(form_errors(form))
        return form

    def _saved(self, obj, status: int = 200) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=obj.pk)).data, status=status)


def _refused(exc: upkeep.UpkeepRefused):
    return Conflict(str(exc), "refused")


class AgencyViewSet(
    UpkeepMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Agencies with their special teams. Commanders see their own agency only, and keep its
    staffing and address current (PATCH) and confirm the record (verify)."""

    serializer_class = AgencySerializer
    rules = {"read": permissions.can_view_registry, "write": permissions.can_keep_agencies}
    filterset_class = AgencyFilter
    ordering_fields = ["name", "code", "updated_at", "sworn_officers", "id"]
    http_method_names = ["get", "patch", "post", "head", "options"]
    form_class = AgencyFactsForm

    def get_queryset(self):
        teams = SpecialTeam.objects.select_related("team_type").order_by(
            "team_type__sort_order", "name"
        )
        agencies = Agency.objects.select_related("region").prefetch_related(
            Prefetch("teams", queryset=teams)
        )
        return permissions.scope_agencies(self.request.user, agencies)

    def _editable(self) -> Agency:
        agency = self.get_object()
        if not permissions.can_edit_agency(self.request.user, agency):
            raise exceptions.PermissionDenied("Only the agency's commander or a coordinator.")
        return agency

    @extend_schema(request=AgencyFactsSerializer, responses=AgencySerializer)
    def partial_update(self, request, *args, **kwargs):
        """Change the agency's sworn officers, minimum home staffing or address (audited)."""
        agency = self._editable()
        before = model_to_dict(agency, upkeep.AGENCY_FACTS)
        form = self._form(agency, current=before)
        try:
            upkeep.agency_facts_save(form.instance, before, request=request)
        except upkeep.UpkeepRefused as exc:
            raise _refused(exc) from None
        return self._saved(agency)

    @extend_schema(request=None, responses=AgencySerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Confirm the agency's record (teams, contacts, figures) is current (audited)."""
        agency = self._editable()
        upkeep.agency_verify(agency, request=request)
        return self._saved(agency)


class SpecialTeamViewSet(
    UpkeepMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Special teams, with the agencies that contribute to multi-agency ones. The agency's
    commander (and coordinators) add teams and change them (audited)."""

    serializer_class = SpecialTeamSerializer
    rules = {"read": permissions.can_view_registry, "write": permissions.can_keep_agencies}
    filterset_class = TeamFilter
    ordering_fields = ["name", "code", "members", "updated_at", "id"]
    http_method_names = ["get", "patch", "post", "head", "options"]
    form_class = TeamForm

    def get_queryset(self):
        teams = SpecialTeam.objects.select_related("agency", "team_type").prefetch_related(
            Prefetch("memberships", queryset=TeamMembership.objects.select_related("agency"))
        )
        return permissions.scope_to_agency(self.request.user, teams)

    @extend_schema(request=TeamWriteSerializer, responses={201: SpecialTeamSerializer})
    def create(self, request, *args, **kwargs):
        agency = self._agency(json_object(request.data).get("agency"))
        form = self._form(None, current={"active": True}, extra=("agency",), agency=agency)
        try:
            upkeep.team_save(form.instance, {}, request=request)
        except upkeep.UpkeepRefused as exc:
            raise _refused(exc) from None
        return self._saved(form.instance, 201)

    @extend_schema(request=TeamWriteSerializer, responses=SpecialTeamSerializer)
    def partial_update(self, request, *args, **kwargs):
        team = self.get_object()
        agency = self._agency(team.agency_id)
        before = {f: getattr(team, f) for f in upkeep.TEAM_FIELDS}
        form = self._form(team, current=model_to_dict(team, upkeep.TEAM_FIELDS), agency=agency)
        try:
            upkeep.team_save(form.instance, before, request=request)
        except upkeep.UpkeepRefused as exc:
            raise _refused(exc) from None
        return self._saved(team)


class ContactViewSet(
    UpkeepMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The people polls are sent to: coordinators see every agency's, a commander their own
    agency's, and keeps them current (audited). A contact who leaves is made inactive."""

    serializer_class = ContactSerializer
    rules = {"read": permissions.can_keep_agencies, "write": permissions.can_keep_agencies}
    filterset_class = ContactFilter
    ordering_fields = ["name", "email", "updated_at", "id"]
    http_method_names = ["get", "patch", "post", "head", "options"]
    form_class = ContactForm

    def get_queryset(self):
        return permissions.scope_to_agency(
            self.request.user, Contact.objects.select_related("agency")
        )

    def _write(self, contact, agency, current: dict, status: int) -> Response:
        before = {f: getattr(contact, f) for f in upkeep.CONTACT_FIELDS} if contact else {}
        form = self._form(contact, current=current, extra=("agency",), agency=agency)
        try:
            upkeep.contact_save(
                form.instance, before, primary=form.cleaned_data["primary"], request=self.request
            )
        except upkeep.UpkeepRefused as exc:
            raise _refused(exc) from None
        return self._saved(form.instance, status)

    @extend_schema(request=ContactWriteSerializer, responses={201: ContactSerializer})
    def create(self, request, *args, **kwargs):
        agency = self._agency(json_object(request.data).get("agency"))
        return self._write(None, agency, {"active": True, "channels": "email"}, 201)

    @extend_schema(request=ContactWriteSerializer, responses=ContactSerializer)
    def partial_update(self, request, *args, **kwargs):
        contact = self.get_object()
        agency = self._agency(contact.agency_id)
        current = {
            **model_to_dict(contact, ContactForm._meta.fields),
            "primary": contact.role == Contact.Role.PRIMARY,
        }
        return self._write(contact, agency, current, 200)


class QualificationHeldSerializer(serializers.Serializer):
    code = serializers.CharField(source="qualification.code", read_only=True)
    name = serializers.CharField(source="qualification.name", read_only=True)
    expires_on = serializers.DateField(read_only=True, allow_null=True)


class TeamMemberSerializer(serializers.ModelSerializer):
    agency = RefSerializer(read_only=True)
    qualifications = QualificationHeldSerializer(many=True, read_only=True)
    # Said, so that the schema says a member may have no address ("").
    email = serializers.EmailField(read_only=True, allow_blank=True)

    class Meta:
        model = TeamMember
        fields = [
            "id", "team", "agency", "name", "rank", "email", "mobile", "home_base", "is_leader",
            "active", "qualifications", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class TeamMemberWriteSerializer(serializers.Serializer):
    """A member to add (team and name required) or the fields to change. Qualifications as in
    the roster CSV: "swat-cert:2027-06-30; crowd-control" (replaces the member's list)."""

    team = serializers.IntegerField(required=False, help_text="On create only.")
    name = serializers.CharField(required=False)
    rank = serializers.CharField(required=False, allow_blank=True)
    agency = serializers.IntegerField(required=False, help_text="Default: the team's agency.")
    email = serializers.EmailField(required=False, allow_blank=True)
    mobile = serializers.CharField(required=False, allow_blank=True)
    home_base = serializers.CharField(required=False, allow_blank=True)
    is_leader = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)
    qualifications = serializers.CharField(required=False, allow_blank=True)


class TeamMemberViewSet(
    UpkeepMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Team rosters' members: a commander's own agency's teams (coordinators' only where
    ROSTER_NAMES_TO_COORDINATORS allows). Officials and other agencies see counts on the
    agencies' pages, never members."""

    serializer_class = TeamMemberSerializer
    rules = {"read": permissions.can_see_any_roster, "write": permissions.can_see_any_roster}
    ordering_fields = ["name", "updated_at", "id"]
    http_method_names = ["get", "patch", "post", "head", "options"]
    form_class = MemberForm

    def get_queryset(self):
        members = TeamMember.objects.select_related("agency", "team").prefetch_related(
            "qualifications__qualification"
        )
        return permissions.scope_to_agency(self.request.user, members, "team__agency")

    def _team(self, team_id) -> SpecialTeam:
        team = (
            SpecialTeam.objects.select_related("agency").filter(pk=team_id).first()
            if str(team_id).isdigit()
            else None
        )
        if team is None or not permissions.can_see_roster(self.request.user, team.agency):
            raise exceptions.ValidationError({"team": ["No such team on your rosters."]})
        return team

    def _write(self, member, team, status: int) -> Response:
        current = (
            {**model_to_dict(member, MemberForm._meta.fields),
             "qualifications": rosters.qualifications_text(member)}
            if member
            else {"agency": team.agency_id, "active": True}
        )  # fmt: skip
        before = {f: getattr(member, f) for f in rosters.MEMBER_FIELDS} if member else {}
        form = self._form(
            member, current=current, extra=("team",), team=team,
            agencies=rosters.team_agencies(team),
        )  # fmt: skip
        rosters.member_save(
            form.instance, before, form.cleaned_data["qualifications"], request=self.request
        )
        return self._saved(form.instance, status)

    @extend_schema(request=TeamMemberWriteSerializer, responses={201: TeamMemberSerializer})
    def create(self, request, *args, **kwargs):
        return self._write(None, self._team(json_object(request.data).get("team")), 201)

    @extend_schema(request=TeamMemberWriteSerializer, responses=TeamMemberSerializer)
    def partial_update(self, request, *args, **kwargs):
        member = self.get_object()
        return self._write(member, self._team(member.team_id), 200)
