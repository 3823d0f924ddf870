"""A poll's waves through the API (issue 20): the controls, as a mixin of the poll viewset."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from readiness.api.errors import Conflict

from .. import waves
from ..models import Wave

CONTROLS = ("pause", "resume", "next", "skip", "stop")


class WaveSerializer(serializers.ModelSerializer):
    """A ring of a poll asked in waves, with the figures that decided it."""

    class Meta:
        model = Wave
        fields = ["number", "max_travel_minutes", "state", "decided_at", "reason", "agencies",
                  "officers_on_record"]  # fmt: skip
        read_only_fields = fields


class WavesSerializer(serializers.Serializer):
    detail = serializers.CharField()
    waves_state = serializers.CharField()
    waves = WaveSerializer(many=True)


class WavesActions:
    """POST polls/<id>/waves/<control>/ (pause, resume, next, skip, stop)."""

    @extend_schema(
        request=None,
        responses={200: WavesSerializer},
        parameters=[OpenApiParameter("control", str, OpenApiParameter.PATH, enum=list(CONTROLS))],
    )
    @action(
        detail=True, methods=["post"], url_path=r"waves/(?P<control>pause|resume|next|skip|stop)"
    )
    def waves(self, request, pk=None, control=None):
        """Control a poll's waves: pause, resume, next (ask the next ring now), skip (the next
        ring) or stop. Audited; 409 when the poll is not asking in waves or no ring is left."""
        poll = self.get_object()
        try:
            done = waves.waves_control(poll=poll, action=control, request=request)
        except waves.NotPossible as exc:
            raise Conflict(str(exc), "not_possible") from None
        poll.refresh_from_db()
        return Response({"detail": done, "waves_state": poll.waves_state,
                         "waves": WaveSerializer(poll.waves.all(), many=True).data})  # fmt: skip
