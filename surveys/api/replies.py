"""Replies through the API: a commander answers for their agency with the reply form's rules,
changes it with the version it changes; coordinators and officials read every answer."""

from collections.abc import Mapping

import django_filters
from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404
from django.utils.datastructures import MultiValueDict
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.response import Response

from agencies.api import RefSerializer, TeamTypeFilter, TeamTypeRefSerializer
from agencies.models import Agency, Region, TeamType
from readiness import permissions
from readiness.api.errors import Conflict
from readiness.api.filters import DateTimeFilter, IdFilter, IdsFilter, id_out_of_range
from readiness.api.forms import form_errors, json_object, plain_text

from .. import replies, selectors
from ..forms import ReplySubmission
from ..models import Invitation, Reply, ReplyLine, ReplyVersion


class ReplyLineSerializer(serializers.ModelSerializer):
    team = RefSerializer(read_only=True)
    # The team's type and level as the answer counted them (the line's copies, see ReplyLine).
    team_type = TeamTypeRefSerializer(read_only=True)
    level = serializers.IntegerField(source="team_level", read_only=True, allow_null=True)

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
    channel = serializers.SerializerMethodField(
        help_text="How the current version came: link, form, api, sms or email."
    )

    class Meta:
        model = Reply
        fields = [
            "id", "poll", "agency", "version", "decision", "authorised_by_name",
            "authorised_by_rank", "conditions", "conditions_text", "decline_reason", "note",
            "officers", "earliest_arrival_minutes", "travel_flagged", "lines", "channel",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_channel(self, reply) -> str:
        if hasattr(reply, "channel"):  # annotated on lists and details
            channel = reply.channel
        else:
            channel = (
                ReplyVersion.objects.filter(reply=reply, number=reply.version)
                .values_list("channel", flat=True)
                .first()
            )
        return channel or ""


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
                form_data.setlist(key, [plain_text(v) for v in value or []])
        elif isinstance(value, list | dict):
            errors[key] = ["Give a single value."]
        elif value is not None:
            form_data[key] = plain_text(value)
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
                form_data[f"team-{team}-{key}"] = plain_text(value)
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
        lines = ReplyLine.objects.filter(reply=OuterRef("pk"), team_type__in=value, officers__gt=0)
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
        lines = ReplyLine.objects.select_related("team", "team_type").order_by(
            "team__team_type__sort_order", "team__name"
        )
        replies = (
            Reply.objects.select_related("agency")
            .prefetch_related(Prefetch("lines", queryset=lines))
            .annotate(channel=selectors.current_channel())
        )
        return permissions.scope_to_agency(self.request.user, replies).order_by("-updated_at", "pk")

    @extend_schema(
        request=ReplyInputSerializer,
        responses={201: ReplySerializer, 200: ReplySerializer, 409: ReplyConflictSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Answer a poll for your agency. If your agency has answered already, send that
        answer's `version`, or use PUT on it."""
        data = json_object(request.data)
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
        return self._submit(request, json_object(request.data), invitation)

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
        reply = selectors.stored_reply(poll=poll, agency=agency)
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
        try:
            version = replies.reply_submit(
                poll=poll, agency=agency, answer=submission.answer(),
                lines=submission.line_data(), base_version=submission.form.cleaned_data["version"],
                user=request.user, request=request,
                confirm=not token_user, channel="api", stored=reply,
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
