"""Polls through the API: compose (the compose form's rules), edit drafts, send, remind, extend,
close, cancel; lists with filters and constant query counts."""

from dataclasses import asdict

import django_filters
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from agencies.api import RefSerializer
from agencies.models import Agency, TeamType
from readiness import permissions
from readiness.api.errors import Conflict
from readiness.api.filters import DateTimeFilter
from readiness.api.forms import form_errors, json_object, plain_text

from .. import chasing, compose, inflight, selectors
from ..forms import ExtendForm, PollForm
from ..forms.inflight import AddAgenciesForm
from ..models import Invitation, Poll, Reply
from .poll_data import POLL_RENAMES, poll_form_data
from .waves import WavesActions


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
    wave_rings = serializers.ListField(
        child=serializers.JSONField(), required=False,
        help_text="Ask in waves. With wave_by travel: upper bounds of travel minutes from the "
        "destination, e.g. [45, 90, 180]; region or agency: a list of ids per ring, e.g. "
        "[[1, 2], [3]]. Then the rest of the targeted agencies; each ring only while the need "
        "is not covered nor projected to be. Empty: everyone at once. Needs officers_needed.",
    )  # fmt: skip
    wave_waits = serializers.ListField(
        child=serializers.IntegerField(min_value=5, max_value=24 * 60), required=False,
        help_text="A wait per ring in minutes, where they differ, e.g. [20, 30, 60]; rings "
        "without one wait wave_wait_minutes.",
    )  # fmt: skip
    reminder_hours_before = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False,
        help_text="Hours before the deadline to remind agencies that have not answered.",
    )  # fmt: skip

    class Meta:
        model = Poll
        fields = [
            "title", "purpose", "requesting_agency", "requesting_person", "situation",
            "officers_needed", "needed_team_type", "needed_by", "requirements",
            "required_qualifications", "message", "destination_name", "destination_latitude",
            "destination_longitude",
            "target_regions", "target_team_types", "target_levels", "target_kinds",
            "target_radius_km", "target_agencies", "deadline", "reminder_hours_before",
            "escalate_after_hours", "reply_digest", "wave_by", "wave_rings", "wave_wait_minutes",
            "wave_waits", "wave_count_conditional",
        ]  # fmt: skip
        extra_kwargs = {
            "target_regions": {"required": False},
            "target_team_types": {"required": False},
            "target_levels": {"required": False},
            "target_agencies": {"required": False},
            "required_qualifications": {"required": False},
            "wave_wait_minutes": {"required": False},
            "wave_by": {"required": False},
            "wave_count_conditional": {"required": False},
        }

    def to_internal_value(self, data):
        """Validation is the compose form's: same rules, same messages as the page."""
        data = json_object(data)
        if self.partial and self.instance is not None:
            current = PollSerializer(self.instance).data
            data = {**{k: current[k] for k in self.Meta.fields}, **data}
        form_data, errors = poll_form_data(data, self.Meta.fields)
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
            "waves_state", "waves_covered_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance):
        data = serializers.ModelSerializer.to_representation(self, instance)
        data["requirements"] = list(instance.requirements)
        data["reminder_hours_before"] = list(instance.reminder_hours_before)
        data["wave_rings"] = list(instance.wave_rings)
        data["wave_waits"] = list(instance.wave_waits)
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


class AddAgenciesSerializer(serializers.Serializer):
    agencies = serializers.ListField(child=serializers.IntegerField(), help_text="Agency ids.")


class AddedSerializer(serializers.Serializer):
    invited = serializers.ListField(child=serializers.CharField())
    already_asked = serializers.ListField(child=serializers.CharField())
    no_contact = serializers.ListField(child=serializers.CharField())
    poll = PollSerializer()


class TestEmailSerializer(serializers.Serializer):
    to = serializers.EmailField()


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
    WavesActions,
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
            return selectors.polls_visible_to(self.request.user, Poll.objects.all())
        polls = (
            Poll.objects.select_related("created_by")
            .prefetch_related(
                "target_regions",
                "target_team_types",
                "target_levels",
                "target_agencies",
                "required_qualifications",
            )
            .annotate(agencies_asked=_asked_count(), agencies_answered=_answered_count())
        )
        return selectors.polls_visible_to(self.request.user, polls)

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

    @extend_schema(request=None, responses={201: PollSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request, pk=None):
        """A new draft like this poll (any state): its question, destination, targets and
        chasing; a fresh deadline and no need time."""
        copy = compose.poll_duplicate(poll=self.get_object(), request=request)
        return Response(self._fresh(copy), status=201)

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
        data = json_object(request.data)
        form = ExtendForm({"deadline": plain_text(data.get("deadline"))})
        if not form.is_valid():
            raise exceptions.ValidationError(form_errors(form))
        try:
            chasing.poll_extend(poll=poll, deadline=form.cleaned_data["deadline"], request=request)
        except chasing.PollNotOpen:
            raise Conflict("Only an open poll's deadline can be extended.", "not_open") from None
        except ValueError as exc:
            raise exceptions.ValidationError({"deadline": [str(exc)]}) from None
        return Response(self._fresh(poll))

    @extend_schema(request=AddAgenciesSerializer, responses=AddedSerializer)
    @action(detail=True, methods=["post"], url_path="add-agencies")
    def add_agencies(self, request, pk=None):
        """Invite more agencies to an open poll, at once; agencies already asked are skipped."""
        poll = self.get_object()
        data = json_object(request.data)
        ids = data.get("agencies")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise exceptions.ValidationError({"agencies": ["Send a list of agency ids."]})
        form = AddAgenciesForm({"agencies": ids}, poll=poll)
        if not form.is_valid():
            raise exceptions.ValidationError(form_errors(form))
        try:
            added = inflight.poll_add_agencies(
                poll=poll, agencies=form.cleaned_data["agencies"], request=request
            )
        except inflight.NotPossible as exc:
            raise Conflict(str(exc), "not_open") from None
        return Response({**asdict(added), "poll": self._fresh(poll)})

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Open again a poll closed before its deadline."""
        poll = self.get_object()
        try:
            inflight.poll_reopen(poll=poll, request=request)
        except inflight.NotPossible as exc:
            raise Conflict(str(exc), "not_reopenable") from None
        return Response(self._fresh(poll))

    @extend_schema(request=None, responses={202: TestEmailSerializer})
    @action(detail=True, methods=["post"], url_path="test-email")
    def test_email(self, request, pk=None):
        """Email the poll, as an agency asked would get it, to the caller (its link records
        nothing)."""
        to = inflight.poll_test_email(poll=self.get_object(), request=request)
        return Response({"to": to}, status=202)
