"""Polls, invitations and replies through the API, with each poll's readiness figures.

Input is validated by the same forms as the pages (PollForm, ReplySubmission) and saved by the
same flows, so the API and the pages cannot disagree about what is valid."""

from collections.abc import Mapping

import django_filters
from django import forms
from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from agencies.api import RefSerializer, TeamTypeFilter, TeamTypeRefSerializer
from agencies.models import Agency, Region, TeamType
from readiness import permissions
from readiness.api import Conflict, DateTimeFilter, IdFilter, IdsFilter, id_out_of_range
from readiness.api_views import ReadinessSummarySerializer, poll_readiness

from . import chasing, compose, replies, selectors
from .forms import CUSTOM, ExtendForm, PollForm, ReplySubmission
from .models import Invitation, Poll, Reply, ReplyLine


def form_errors(form, rename: Mapping[str, str] | None = None, prefix: str = "") -> dict:
    """A Django form's errors in the API's shape, under the API's field names."""
    rename = rename or {}
    errors: dict[str, list[str]] = {}
    for name, messages in form.errors.items():
        key = "non_field_errors" if name == "__all__" else prefix + rename.get(name, name)
        errors.setdefault(key, []).extend(str(m) for m in messages)
    return errors


def _plain(value) -> str:
    """A JSON scalar as the string a form field would have received from a page."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


def _json_object(data) -> Mapping:
    if not isinstance(data, Mapping):
        raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
    return data


# Polls ------------------------------------------------------------------------------------------

POLL_LISTS = {"target_regions", "target_team_types", "target_levels", "target_kinds",
              "target_agencies"}  # fmt: skip
# The API's field names for the compose form's (lists where the page has a text box).
POLL_RENAMES = {"requirements_text": "requirements", "reminders": "reminder_hours_before",
                "destination": "destination_name"}  # fmt: skip
INVALID_CHOICE = forms.ModelMultipleChoiceField.default_error_messages["invalid_choice"]


def poll_form_data(data: Mapping) -> tuple[MultiValueDict, dict]:
    """The compose form's data from the API's JSON, and errors about shapes the form cannot
    judge (a list where one value belongs, say)."""
    form_data, errors = MultiValueDict({"destination": [CUSTOM]}), {}
    for key, value in data.items():
        if key in POLL_LISTS or key in ("requirements", "reminder_hours_before"):
            if value is None:
                value = []
            if not isinstance(value, list) or any(isinstance(v, list | dict) for v in value):
                errors[key] = ["Give a list of values."]
                continue
            if key == "requirements":
                form_data["requirements_text"] = "\n".join(_plain(v) for v in value)
            elif key == "reminder_hours_before":
                form_data["reminders"] = ", ".join(_plain(v) for v in value)
            elif wrong := [v for v in value if key != "target_kinds" and id_out_of_range(v)]:
                # No object's id: the form's own message, without asking the database.
                errors[key] = [INVALID_CHOICE % {"value": wrong[0]}]
            else:
                form_data.setlist(key, [_plain(v) for v in value])
        elif key in PollWriteSerializer.Meta.fields:
            if isinstance(value, list | dict):
                errors[key] = ["Give a single value."]
                continue
            form_data[key] = _plain(value)
    return form_data, errors


class PollWriteSerializer(serializers.ModelSerializer):
    """What a coordinator sends to compose or edit a draft (the compose page's fields)."""

    requesting_agency = serializers.PrimaryKeyRelatedField(
        queryset=Agency.objects.all(), allow_null=True, required=False,
        help_text="Required for a request for assistance.",
    )  # fmt: skip
    needed_team_type = serializers.PrimaryKeyRelatedField(
        queryset=TeamType.objects.all(), allow_null=True, required=False
    )
    requirements = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Short texts; answers count "
        "the officers meeting every one."
    )  # fmt: skip
    target_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=Agency.Kind.choices), required=False
    )
    reminder_hours_before = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False,
        help_text="Hours before the deadline to remind agencies that have not answered.",
    )  # fmt: skip

    class Meta:
        model = Poll
        fields = [
            "title", "purpose", "requesting_agency", "requesting_person", "situation",
            "officers_needed", "needed_team_type", "needed_by", "requirements", "message",
            "destination_name", "destination_latitude", "destination_longitude",
            "target_regions", "target_team_types", "target_levels", "target_kinds",
            "target_radius_km", "target_agencies", "deadline", "reminder_hours_before",
            "escalate_after_hours", "reply_digest",
        ]  # fmt: skip
        extra_kwargs = {
            "target_regions": {"required": False},
            "target_team_types": {"required": False},
            "target_levels": {"required": False},
            "target_agencies": {"required": False},
        }

    def to_internal_value(self, data):
        """Validation is the compose form's: same rules, same messages as the page."""
        data = _json_object(data)
        if self.partial and self.instance is not None:
            current = PollSerializer(self.instance).data
            data = {**{k: current[k] for k in self.Meta.fields}, **data}
        form_data, errors = poll_form_data(data)
        form = PollForm(form_data, instance=self.instance)
        if not form.is_valid() or errors:
            raise exceptions.ValidationError({**form_errors(form, POLL_RENAMES), **errors})
        return {"form": form}

    def create(self, validated_data):
        return compose.poll_create(form=validated_data["form"], request=self.context["request"])

    def update(self, instance, validated_data):
        try:
            return compose.poll_update(form=validated_data["form"], request=self.context["request"])
        except compose.PollNotDraft:
            raise Conflict(
                "Only a draft can be edited; this poll has been sent.", "not_draft"
            ) from None

    def to_representation(self, instance):
        return PollSerializer(instance, context=self.context).data


class PollSerializer(PollWriteSerializer):
    """A poll as read: what was composed, its state, and how many agencies were asked and have
    answered."""

    agencies_asked = serializers.IntegerField(read_only=True)
    agencies_answered = serializers.IntegerField(read_only=True)
    created_by = RefSerializer(read_only=True, help_text="Its `name` is the person's name.")

    class Meta(PollWriteSerializer.Meta):
        fields = [
            "id", *PollWriteSerializer.Meta.fields, "state", "agencies_asked", "agencies_answered",
            "created_by", "created_at", "updated_at", "sent_at", "closed_at", "cancelled_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance):
        data = serializers.ModelSerializer.to_representation(self, instance)
        data["requirements"] = list(instance.requirements)
        data["reminder_hours_before"] = list(instance.reminder_hours_before)
        data["created_by"] = {"id": instance.created_by_id,
                              "name": instance.created_by.get_full_name()}  # fmt: skip
        for name in ("agencies_asked", "agencies_answered"):
            data[name] = getattr(instance, name, None)
            if data[name] is None:
                data[name] = _count(instance, name)
        return data


def _count(poll: Poll, name: str) -> int:
    if name == "agencies_asked":
        return poll.invitations.values("agency").distinct().count()
    return poll.replies.count()


class PollFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=Poll.State.choices)
    purpose = django_filters.ChoiceFilter(choices=Poll.Purpose.choices)
    situation = django_filters.ChoiceFilter(choices=Poll.Situation.choices)
    updated_since = DateTimeFilter(field_name="updated_at", lookup_expr="gte")
    created_since = DateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Poll
        fields = ["state", "purpose", "situation", "updated_since", "created_since"]


class ExtendSerializer(serializers.Serializer):
    deadline = serializers.DateTimeField(help_text="Later than the current one, in the future.")


class SendResultSerializer(serializers.Serializer):
    invitations = serializers.IntegerField(help_text="Invitations queued for delivery.")
    poll = PollSerializer()


class RemindResultSerializer(serializers.Serializer):
    reminded = serializers.IntegerField(help_text="Contacts reminded now.")


def _asked_count():
    asked = (
        Invitation.objects.filter(poll=OuterRef("pk"))
        .order_by()
        .values("poll")
        .annotate(n=Count("agency", distinct=True))
        .values("n")
    )
    return Coalesce(Subquery(asked, output_field=IntegerField()), Value(0))


def _answered_count():
    answered = (
        Reply.objects.filter(poll=OuterRef("pk")).order_by().values("poll")
        .annotate(n=Count("pk")).values("n")
    )  # fmt: skip
    return Coalesce(Subquery(answered, output_field=IntegerField()), Value(0))


@extend_schema(responses=PollSerializer)
class PollViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Availability polls. Coordinators compose, edit (drafts), send, remind, extend, close and
    cancel; officials read every poll; commanders read the sent polls their agency was asked."""

    rules = {
        "read": permissions.can_view_registry,  # scoped below: commanders see their agency's
        "write": permissions.can_manage_polls,
        "readiness": permissions.can_view_readiness,
    }
    filterset_class = PollFilter
    ordering_fields = ["created_at", "updated_at", "deadline", "sent_at", "title", "id"]

    def get_queryset(self):
        if self.action == "readiness":  # the figures need the poll's own row, nothing more
            return permissions.scope_polls(self.request.user, Poll.objects.all())
        polls = (
            Poll.objects.select_related("created_by")
            .prefetch_related(
                "target_regions", "target_team_types", "target_levels", "target_agencies"
            )
            .annotate(agencies_asked=_asked_count(), agencies_answered=_answered_count())
        )
        return permissions.scope_polls(self.request.user, polls)

    def get_serializer_class(self):
        return (
            PollWriteSerializer
            if self.action in ("create", "update", "partial_update")
            else (PollSerializer)
        )

    @extend_schema(request=PollWriteSerializer, responses={201: PollSerializer})
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(request=PollWriteSerializer, responses=PollSerializer)
    def update(self, request, *args, **kwargs):
        poll = self.get_object()
        if poll.state != Poll.State.DRAFT:
            raise Conflict("Only a draft can be edited; this poll has been sent.", "not_draft")
        return super().update(request, *args, **kwargs)

    @extend_schema(request=PollWriteSerializer, responses=PollSerializer)
    def partial_update(self, request, *args, **kwargs):
        return super().partial_update(request, *args, **kwargs)

    def _fresh(self, poll: Poll) -> dict:
        return PollSerializer(self.get_queryset().get(pk=poll.pk)).data

    @extend_schema(request=None, responses={202: SendResultSerializer})
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Send a draft: one invitation per targeted agency, delivered by the workers."""
        poll = self.get_object()
        try:
            count = compose.poll_send(poll=poll, request=request)
        except compose.PollNotDraft:
            raise Conflict("This poll has already been sent.", "not_draft") from None
        except compose.PollNotSendable as exc:
            raise Conflict(str(exc), "not_sendable") from None
        return Response({"invitations": count, "poll": self._fresh(poll)}, status=202)

    def _open_action(self, request, service, refused: str):
        poll = self.get_object()
        try:
            result = service(poll=poll, request=request)
        except chasing.PollNotOpen:
            raise Conflict(refused, "not_open") from None
        return poll, result

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close an open poll now: reply links stop working."""
        poll, _ = self._open_action(request, chasing.poll_close, "Only an open poll can be closed.")
        return Response(self._fresh(poll))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an open poll; everyone asked is told to stand down."""
        poll, _ = self._open_action(
            request, chasing.poll_cancel, "Only an open poll can be cancelled."
        )
        return Response(self._fresh(poll))

    @extend_schema(request=None, responses=RemindResultSerializer)
    @action(detail=True, methods=["post"])
    def remind(self, request, pk=None):
        """Remind every contact whose agency has not answered (not twice within ten minutes)."""
        _, count = self._open_action(
            request, chasing.poll_remind_silent, "Only an open poll's silent agencies can be "
            "reminded."
        )  # fmt: skip
        return Response({"reminded": count})

    @extend_schema(request=ExtendSerializer)
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        """Move an open poll's deadline later."""
        poll = self.get_object()
        data = _json_object(request.data)
        form = ExtendForm({"deadline": _plain(data.get("deadline"))})
        if not form.is_valid():
            raise exceptions.ValidationError(form_errors(form))
        try:
            chasing.poll_extend(poll=poll, deadline=form.cleaned_data["deadline"], request=request)
        except chasing.PollNotOpen:
            raise Conflict("Only an open poll's deadline can be extended.", "not_open") from None
        except ValueError as exc:
            raise exceptions.ValidationError({"deadline": [str(exc)]}) from None
        return Response(self._fresh(poll))

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "within",
                str,
                description="Count officers who can be there within this many "
                "minutes (0 to 4320), or `all`. Default: the need's deadline, else any time.",
            ),
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                description="The ETag of an earlier answer: 304 while nothing has changed.",
            ),
        ],
        responses={200: ReadinessSummarySerializer, 304: OpenApiResponse(description="Unchanged.")},
    )
    @action(detail=True, methods=["get"])
    def readiness(self, request, pk=None):
        """The poll's dashboard figures: headline, arrival curve, need, breakdowns, progress."""
        return poll_readiness(request, self.get_object())


# Invitations ------------------------------------------------------------------------------------


class InvitationReplySerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Reply.Decision.choices, allow_null=True)
    officers = serializers.IntegerField(allow_null=True)


class InvitationSerializer(serializers.ModelSerializer):
    agency = RefSerializer(read_only=True)
    contact = RefSerializer(
        read_only=True, allow_null=True, help_text="Coordinators and the agency's commander only."
    )
    email = serializers.EmailField(
        read_only=True, allow_null=True, help_text="Coordinators and the agency's commander only."
    )
    failure_reason = serializers.CharField(
        read_only=True, allow_null=True, help_text="Coordinators and the agency's commander only."
    )
    reply = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id", "poll", "agency", "contact", "email", "is_escalation", "distance_km",
            "travel_minutes", "state", "attempts", "failure_reason", "sent_at", "revoked_at",
            "reminders_sent", "last_reminded_at", "escalated_at", "replied_at",
            "stand_down_sent_at", "created_at", "reply",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, invitation):
        data = super().to_representation(invitation)
        request = self.context.get("request")
        if request is not None and not permissions.can_view_contacts(
            request.user, invitation.agency_id
        ):
            # One rule for contact details: officials see that someone was asked, not who.
            # A server's refusal usually quotes the address: it goes with the details.
            data["contact"] = data["email"] = data["failure_reason"] = None
        return data

    @extend_schema_field(InvitationReplySerializer(allow_null=True))
    def get_reply(self, invitation) -> dict | None:
        if invitation.reply_decision is None:
            return None
        return {"decision": invitation.reply_decision, "officers": invitation.reply_officers}


class InvitationFilter(django_filters.FilterSet):
    poll = IdFilter(field_name="poll_id")
    agency = IdFilter(field_name="agency_id")
    region = IdsFilter(field_name="agency__region", queryset=Region.objects.all())
    kind = django_filters.MultipleChoiceFilter(
        field_name="agency__kind", choices=Agency.Kind.choices
    )
    state = django_filters.MultipleChoiceFilter(choices=Invitation.State.choices)
    replied = django_filters.BooleanFilter(
        field_name="replied_at", lookup_expr="isnull", exclude=True,
        label="true: the agency has answered; false: not yet.",
    )  # fmt: skip
    is_escalation = django_filters.BooleanFilter()

    class Meta:
        model = Invitation
        fields = ["poll", "agency", "region", "kind", "state", "replied", "is_escalation"]


class InvitationViewSet(viewsets.ReadOnlyModelViewSet):
    """Who was asked, and where each invitation stands: delivery, reminders, escalation, answer.
    Commanders see their own agency's invitations."""

    serializer_class = InvitationSerializer
    rules = {"read": permissions.can_view_registry}
    filterset_class = InvitationFilter
    ordering_fields = ["distance_km", "sent_at", "created_at", "replied_at", "id"]

    def get_queryset(self):
        replies = Reply.objects.filter(poll=OuterRef("poll"), agency=OuterRef("agency"))
        invitations = (
            Invitation.objects.select_related("agency", "contact")
            .annotate(
                reply_decision=Subquery(replies.values("decision")[:1]),
                reply_officers=Subquery(replies.values("officers")[:1]),
            )
            .order_by("poll_id", "agency__name", "pk")
        )
        return permissions.scope_to_agency(self.request.user, invitations)


# Replies ----------------------------------------------------------------------------------------


class ReplyLineSerializer(serializers.ModelSerializer):
    team = RefSerializer(read_only=True)
    team_type = TeamTypeRefSerializer(source="team.team_type", read_only=True)
    level = serializers.IntegerField(source="team.level", read_only=True, allow_null=True)

    class Meta:
        model = ReplyLine
        fields = [
            "team", "team_type", "level", "officers", "vehicles", "depart_minutes",
            "travel_minutes", "arrival_minutes", "deploy_hours", "officers_qualified",
            "estimated_travel_minutes", "travel_flagged",
        ]  # fmt: skip
        read_only_fields = fields


class ReplySerializer(serializers.ModelSerializer):
    """An agency's current answer to a poll, with a line per team it answered for. `version`
    counts saved versions: send it back when you change the answer."""

    agency = RefSerializer(read_only=True)
    lines = ReplyLineSerializer(many=True, read_only=True)

    class Meta:
        model = Reply
        fields = [
            "id", "poll", "agency", "version", "decision", "authorised_by_name",
            "authorised_by_rank", "conditions", "conditions_text", "decline_reason", "note",
            "officers", "earliest_arrival_minutes", "travel_flagged", "lines", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReplyLineInputSerializer(serializers.Serializer):
    """One team's figures. Teams left out are not answered for."""

    team = serializers.IntegerField(help_text="The id of one of your agency's teams.")
    officers = serializers.IntegerField(min_value=0, allow_null=True, required=False)
    vehicles = serializers.IntegerField(min_value=0, allow_null=True, required=False)
    depart_minutes = serializers.IntegerField(
        min_value=0, allow_null=True, required=False, help_text="From the call; required with "
        "officers."
    )  # fmt: skip
    travel_minutes = serializers.IntegerField(
        min_value=0, allow_null=True, required=False, help_text="Required with officers."
    )
    deploy_hours = serializers.IntegerField(min_value=1, allow_null=True, required=False)
    officers_qualified = serializers.IntegerField(
        min_value=0, allow_null=True, required=False,
        help_text="Of them, meeting every requirement (only when the poll states any).",
    )  # fmt: skip


class ReplyInputSerializer(serializers.Serializer):
    """A commander's answer for their agency, validated exactly as the reply form."""

    poll = serializers.IntegerField(help_text="Only when creating: the poll answered.")
    version = serializers.IntegerField(
        min_value=0, help_text="The version you are changing (0 for a first answer)."
    )
    decision = serializers.ChoiceField(choices=Reply.Decision.choices)
    authorised_by_name = serializers.CharField(required=False, allow_blank=True)
    authorised_by_rank = serializers.CharField(required=False, allow_blank=True)
    conditions = serializers.ListField(
        child=serializers.ChoiceField(choices=Reply.Condition.choices), required=False
    )
    conditions_text = serializers.CharField(required=False, allow_blank=True)
    decline_reason = serializers.CharField(required=False, allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True)
    lines = ReplyLineInputSerializer(many=True, required=False)


class ReplyUpdateSerializer(ReplyInputSerializer):
    poll = None


class ReplyConflictSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField()
    current = ReplySerializer(required=False, help_text="With version_conflict: what is stored.")


REPLY_FIELDS = ("version", "decision", "authorised_by_name", "authorised_by_rank", "conditions",
                "conditions_text", "decline_reason", "note")  # fmt: skip
LINE_FIELDS = ("officers", "vehicles", "depart_minutes", "travel_minutes", "deploy_hours",
               "officers_qualified")  # fmt: skip


def reply_form_data(data: Mapping) -> tuple[MultiValueDict, dict, dict]:
    """The reply form's data from the API's JSON: (data, errors about its shape, the position
    of each team's line in `lines`, for naming errors)."""
    form_data, errors, positions = MultiValueDict(), {}, {}
    for key in REPLY_FIELDS:
        value = data.get(key)
        if key == "conditions":
            if value is not None and not isinstance(value, list):
                errors[key] = ["Give a list of conditions."]
            else:
                form_data.setlist(key, [_plain(v) for v in value or []])
        elif isinstance(value, list | dict):
            errors[key] = ["Give a single value."]
        elif value is not None:
            form_data[key] = _plain(value)
    lines = data.get("lines") or []
    if not isinstance(lines, list):
        return form_data, {**errors, "lines": ["Give a list of team lines."]}, positions
    for index, line in enumerate(lines):
        team = line.get("team") if isinstance(line, Mapping) else None
        if not isinstance(team, int) or isinstance(team, bool):
            errors[f"lines.{index}.team"] = ["Give the team's id."]
            continue
        if team in positions:
            errors[f"lines.{index}.team"] = ["This team is listed twice."]
            continue
        positions[team] = index
        for key in LINE_FIELDS:
            value = line.get(key)
            if isinstance(value, list | dict):
                errors[f"lines.{index}.{key}"] = ["Give a single value."]
            elif value is not None:
                form_data[f"team-{team}-{key}"] = _plain(value)
    return form_data, errors, positions


def submission_errors(submission: ReplySubmission, positions: dict) -> dict:
    """The reply form's errors in the API's shape: the same messages, per field."""
    errors = form_errors(submission.form)
    for line in submission.lines:
        index = positions.get(line.team.pk)
        for key, messages in form_errors(line, prefix=f"lines.{index}.").items():
            if key == "non_field_errors":
                key = f"lines.{index}"
            errors.setdefault(key, []).extend(messages)
    if submission.errors:
        errors.setdefault("non_field_errors", []).extend(submission.errors)
    return errors


class ReplyFilter(django_filters.FilterSet):
    poll = IdFilter(field_name="poll_id")
    agency = IdFilter(field_name="agency_id")
    region = IdsFilter(field_name="agency__region", queryset=Region.objects.all())
    kind = django_filters.MultipleChoiceFilter(
        field_name="agency__kind", choices=Agency.Kind.choices
    )
    decision = django_filters.MultipleChoiceFilter(choices=Reply.Decision.choices)
    team_type = TeamTypeFilter(
        queryset=TeamType.objects.all(), method="filter_team_type",
        label="Replies with officers on teams of these type ids.",
    )  # fmt: skip
    updated_since = DateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Reply
        fields = ["poll", "agency", "region", "kind", "decision", "team_type", "updated_since"]

    def filter_team_type(self, queryset, name, value):
        if not value:
            return queryset
        lines = ReplyLine.objects.filter(
            reply=OuterRef("pk"), team__team_type__in=value, officers__gt=0
        )
        return queryset.filter(Exists(lines))


@extend_schema(responses=ReplySerializer)
class ReplyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Agencies' answers. Coordinators and officials read all; a commander reads, creates and
    changes their own agency's, with the reply form's validation and conflict detection."""

    serializer_class = ReplySerializer
    rules = {
        "read": permissions.can_view_registry,  # scoped below: commanders see their agency's
        "create": permissions.can_answer_for_agency,
        "update": permissions.can_answer_for_agency,
    }
    http_method_names = ["get", "post", "put", "head", "options"]
    filterset_class = ReplyFilter
    ordering_fields = ["updated_at", "created_at", "officers", "earliest_arrival_minutes", "id"]

    def get_queryset(self):
        lines = ReplyLine.objects.select_related("team__team_type").order_by(
            "team__team_type__sort_order", "team__name"
        )
        replies = Reply.objects.select_related("agency").prefetch_related(
            Prefetch("lines", queryset=lines)
        )
        return permissions.scope_to_agency(self.request.user, replies).order_by("-updated_at", "pk")

    @extend_schema(
        request=ReplyInputSerializer,
        responses={201: ReplySerializer, 200: ReplySerializer, 409: ReplyConflictSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Answer a poll for your agency. If your agency has answered already, send that
        answer's `version`, or use PUT on it."""
        data = _json_object(request.data)
        poll_id = data.get("poll")
        if not isinstance(poll_id, int) or isinstance(poll_id, bool):
            raise exceptions.ValidationError({"poll": ["Give the id of the poll you answer."]})
        invitation = self._invitation(poll_id)
        if invitation is None:
            raise exceptions.ValidationError({"poll": ["Your agency was not asked in this poll."]})
        return self._submit(request, data, invitation)

    @extend_schema(
        request=ReplyUpdateSerializer,
        responses={200: ReplySerializer, 409: ReplyConflictSerializer},
    )
    def update(self, request, *args, **kwargs):
        """Change your agency's answer: send the `version` you are changing."""
        reply = self.get_object()
        invitation = self._invitation(reply.poll_id)
        if invitation is None:  # an answer stays readable after its invitation is gone
            raise Http404
        return self._submit(request, _json_object(request.data), invitation)

    def _invitation(self, poll_id: int) -> Invitation | None:
        """The user's agency's invitation to this poll, as on the page (sent polls only)."""
        if id_out_of_range(poll_id):
            return None
        return selectors.agency_invitation(poll_id=poll_id, agency_id=self.request.user.agency_id)

    def _submit(self, request, data: Mapping, invitation: Invitation) -> Response:
        poll, agency = invitation.poll, invitation.agency
        reason = replies.reply_refusal(poll)
        if reason:
            raise Conflict(f"This poll no longer takes answers ({reason}).", reason)
        reply = Reply.objects.filter(poll=poll, agency=agency).prefetch_related("lines").first()
        teams, targeted = selectors.reply_teams(poll=poll, agency=agency, reply=reply)
        form_data, errors, positions = reply_form_data(data)
        submission = ReplySubmission(
            form_data, reply=reply, poll=poll, agency=agency, teams=teams,
            targeted_ids=targeted, estimate=invitation.travel_minutes,
        )  # fmt: skip
        valid = submission.is_valid()
        if not valid or errors:
            raise exceptions.ValidationError({**submission_errors(submission, positions), **errors})
        token_user = request.auth is not None  # a service account has no mailbox to confirm to
        url = reverse("surveys:my-agency-reply", args=[poll.pk])
        try:
            version = replies.reply_submit(
                poll=poll, agency=agency, answer=submission.answer(),
                lines=submission.line_data(), base_version=submission.form.cleaned_data["version"],
                user=request.user, request=request, confirm_url=settings.SITE_URL + url,
                confirm=not token_user,
            )  # fmt: skip
        except replies.ReplyRefused as exc:
            raise Conflict(
                f"This poll no longer takes answers ({exc.reason}).", exc.reason
            ) from None
        except replies.ReplyConflict as exc:
            current = self.get_queryset().get(pk=exc.current.pk)
            raise Conflict(
                "Someone saved a newer answer since version "
                f"{submission.form.cleaned_data['version']}; compare it with yours and send "
                "again with its version.",
                "version_conflict",
                extra={"current": ReplySerializer(current).data},
            ) from None
        saved = self.get_queryset().get(poll=poll, agency=agency)
        created = version is not None and version.number == 1
        return Response(ReplySerializer(saved).data, status=201 if created else 200)
