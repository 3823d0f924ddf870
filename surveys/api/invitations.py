"""Invitations through the API: who was asked and where each invitation stands (delivery,
chasing, answer). Contact details follow the one rule (readiness.permissions.can_view_contacts)."""

import django_filters
from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from agencies.api import RefSerializer
from agencies.models import Agency, Region
from readiness import permissions
from readiness.api.errors import Conflict
from readiness.api.filters import IdFilter, IdsFilter
from readiness.api.forms import form_errors, json_object, plain_text

from .. import chasing, inflight
from ..forms.inflight import SendToContactForm
from ..models import Invitation, Reply


class InvitationReplySerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Reply.Decision.choices, allow_null=True)
    officers = serializers.IntegerField(allow_null=True)


class InvitationSerializer(serializers.ModelSerializer):
    agency = RefSerializer(read_only=True)
    contact = RefSerializer(
        read_only=True, allow_null=True, help_text="Coordinators and the agency's commander only."
    )
    email = serializers.EmailField(
        read_only=True,
        allow_null=True,
        help_text="Coordinators and the agency's commander only; null for a text invitation.",
    )
    mobile = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Coordinators and the agency's commander only; empty for an email invitation.",
    )
    failure_reason = serializers.CharField(
        read_only=True, allow_null=True, help_text="Coordinators and the agency's commander only."
    )
    reply = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id", "poll", "agency", "contact", "channel", "email", "mobile", "is_escalation",
            "distance_km", "travel_minutes", "state", "receipt", "attempts", "failure_reason",
            "sent_at", "revoked_at", "reminders_sent", "last_reminded_at", "escalated_at",
            "replied_at", "stand_down_sent_at", "created_at", "reply",
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
            data["contact"] = data["email"] = data["mobile"] = data["failure_reason"] = None
        elif not data["email"]:  # a text invitation has no address: none, not an empty one
            data["email"] = None
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


class SendToSerializer(serializers.Serializer):
    contact = serializers.IntegerField(help_text="An active contact of the invitation's agency.")


class InvitationViewSet(viewsets.ReadOnlyModelViewSet):
    """Who was asked, and where each invitation stands: delivery, reminders, escalation, answer.
    Commanders see their own agency's invitations. Coordinators withdraw a link, re-issue it,
    or send the poll to another of the agency's contacts."""

    serializer_class = InvitationSerializer
    rules = {
        "read": permissions.can_view_registry,
        "revoke": permissions.can_manage_polls,
        "reissue": permissions.can_manage_polls,
        "send_to": permissions.can_manage_polls,
    }
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

    def _fresh(self, invitation: Invitation, status: int = 200) -> Response:
        fresh = self.get_queryset().get(pk=invitation.pk)
        return Response(self.get_serializer(fresh).data, status=status)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Withdraw the invitation's reply links: they stop working at once."""
        invitation = self.get_object()
        chasing.invitation_revoke(invitation=invitation, request=request)
        return self._fresh(invitation)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def reissue(self, request, pk=None):
        """Email a new reply link; every earlier link of this invitation stops working."""
        invitation = self.get_object()
        try:
            inflight.invitation_reissue(invitation=invitation, request=request)
        except inflight.NotPossible as exc:
            raise Conflict(str(exc), "not_possible") from None
        return self._fresh(invitation)

    @extend_schema(request=SendToSerializer, responses={201: InvitationSerializer})
    @action(detail=True, methods=["post"], url_path="send-to")
    def send_to(self, request, pk=None):
        """Send the poll to another active contact of the agency, with a link of their own."""
        invitation = self.get_object()
        data = json_object(request.data)
        form = SendToContactForm(
            {"contact": plain_text(data.get("contact"))}, invitation=invitation
        )
        if not form.is_valid():
            raise exceptions.ValidationError(form_errors(form))
        try:
            new = inflight.invitation_send_to_contact(
                invitation=invitation, contact=form.cleaned_data["contact"], request=request
            )
        except inflight.NotPossible as exc:
            raise Conflict(str(exc), "not_possible") from None
        return self._fresh(new, 201)
