"""The readiness figures through the API (the dashboards' own functions), and who is asking."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from readiness import permissions
from surveys import api as surveys_api
from surveys.models import Poll

from . import figures

# The summary's shape, for the schema (figures.Summary.as_json builds it). --------------------


class PollRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    state = serializers.ChoiceField(choices=Poll.State.choices)
    purpose = serializers.ChoiceField(choices=Poll.Purpose.choices)


class HeadlineSerializer(serializers.Serializer):
    agencies_asked = serializers.IntegerField()
    agencies_replied = serializers.IntegerField()
    reply_rate = serializers.FloatField(help_text="Replied ÷ asked, 0 to 1.")
    agencies_available = serializers.IntegerField(help_text="With officers there in the window.")
    agencies_conditional = serializers.IntegerField()
    agencies_unavailable = serializers.IntegerField()
    agencies_too_late = serializers.IntegerField(
        help_text="Said yes, but cannot get anyone there within the window."
    )
    officers_available = serializers.IntegerField()
    officers_conditional = serializers.IntegerField()
    officers_qualified_available = serializers.IntegerField()
    officers_qualified_conditional = serializers.IntegerField()


class CurvePointSerializer(serializers.Serializer):
    by_minutes = serializers.IntegerField(
        allow_null=True, help_text="Minutes after the call; null is later than 8 hours."
    )
    available = serializers.IntegerField(help_text="Officers there by then, without conditions.")
    with_conditions = serializers.IntegerField(help_text="Including conditional officers.")
    qualified_available = serializers.IntegerField()
    qualified_with_conditions = serializers.IntegerField()
    backed_by_members = serializers.IntegerField(
        help_text="Officers backed by members' own answers, by the members' own arrival times."
    )


class NeedSerializer(serializers.Serializer):
    officers = serializers.IntegerField()
    team_type = serializers.CharField(allow_null=True)
    deadline_minutes = serializers.IntegerField(allow_null=True)
    judged_at_minutes = serializers.IntegerField(allow_null=True)
    met_available_at_minutes = serializers.IntegerField(allow_null=True)
    met_with_conditions_at_minutes = serializers.IntegerField(allow_null=True)
    available = serializers.IntegerField()
    with_conditions = serializers.IntegerField()
    shortfall_available = serializers.IntegerField()
    shortfall_with_conditions = serializers.IntegerField()


class ProgressSerializer(serializers.Serializer):
    minutes = serializers.IntegerField()
    at = serializers.DateTimeField()
    answered = serializers.IntegerField()
    share = serializers.FloatField()


class ByTypeSerializer(serializers.Serializer):
    team_type = serializers.CharField()
    level = serializers.IntegerField(allow_null=True)
    teams = serializers.IntegerField()
    agencies = serializers.IntegerField()
    available = serializers.IntegerField()
    conditional = serializers.IntegerField()
    qualified = serializers.IntegerField()
    earliest_minutes = serializers.IntegerField(allow_null=True)


class ByRegionSerializer(serializers.Serializer):
    region = serializers.CharField()
    asked = serializers.IntegerField()
    replied = serializers.IntegerField()
    available = serializers.IntegerField()
    conditional = serializers.IntegerField()
    unavailable = serializers.IntegerField()
    officers_available = serializers.IntegerField()
    officers_conditional = serializers.IntegerField()


class ConditionCountSerializer(serializers.Serializer):
    condition = serializers.CharField()
    label = serializers.CharField()
    replies = serializers.IntegerField()


class ReadinessSummarySerializer(serializers.Serializer):
    poll = PollRefSerializer()
    within_minutes = serializers.IntegerField(allow_null=True)
    headline = HeadlineSerializer()
    arrival_curve = CurvePointSerializer(many=True)
    need = NeedSerializer(allow_null=True)
    reply_progress = ProgressSerializer(many=True)
    by_team_type = ByTypeSerializer(many=True)
    by_region = ByRegionSerializer(many=True)
    conditions = ConditionCountSerializer(many=True)
    stamp = serializers.CharField(help_text="Changes whenever any figure can have changed.")


def poll_readiness(request, poll: Poll) -> Response:
    """The dashboard's figures for one poll, with an ETag: a client polling with If-None-Match
    gets 304 (and costs one small query) while nothing has changed."""
    if poll.state == Poll.State.DRAFT:
        raise exceptions.NotFound("A draft has no figures yet: it has not been sent.")
    within, error = figures.parse_within(request.query_params.get("within", ""), poll)
    if error:
        raise exceptions.ValidationError({"within": [error]})
    # The stamp covers answers, deliveries, chasing, the poll's state and the one clock-driven
    # figure (a reply-progress step turning); the window picks the representation. Nothing
    # else moves, so a client polling every few minutes still gets its 304s.
    now = timezone.now()
    stamp = figures.poll_stamp(poll=poll, now=now)
    etag = f'"{stamp}-{"all" if within is None else within}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status=304, headers=headers)
    summary = figures.cached_summary(poll=poll, within=within, now=now, stamp=stamp)
    return Response(summary.as_json(), headers=headers)


# Standing readiness -----------------------------------------------------------------------------


class StandingRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    teams = serializers.IntegerField(help_text="Active teams.")
    answered = serializers.IntegerField(help_text="Teams with a statement in the window.")
    available = serializers.IntegerField(help_text="Officers stated available.")
    conditional = serializers.IntegerField(help_text="Officers stated available with conditions.")
    declined = serializers.IntegerField(help_text="Teams whose latest statement is a no.")
    members = serializers.IntegerField(help_text="Officers on the teams, all told.")


class StandingTotalSerializer(StandingRowSerializer):
    name = None


class StandingReadinessSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    by_region = StandingRowSerializer(many=True)
    by_type = StandingRowSerializer(many=True)
    total = StandingTotalSerializer()


class StandingReadinessView(APIView):
    """Standing readiness: for every active team, its latest statement in answers of the last
    `days` days (cancelled polls left out), summed by region, by team type and in total."""

    rules = {"read": permissions.can_view_readiness}

    @extend_schema(
        parameters=[
            OpenApiParameter("days", int, description="1 to 3650; default 30.", default=30)
        ],
        responses=StandingReadinessSerializer,
    )
    def get(self, request):
        raw = request.query_params.get("days", "30")
        try:
            days = int(raw)
        except ValueError:
            days = 0
        if not 1 <= days <= 3650:
            raise exceptions.ValidationError({"days": ["Give whole days from 1 to 3650."]})
        data = figures.standing_readiness(days=days)
        return Response(StandingReadinessSerializer(data).data)


# The poll's figures, on the surveys API's poll resource ------------------------------------------


class PollViewSet(surveys_api.PollViewSet):
    # The readiness figures are the dashboards', which sit above the surveys app: the route is
    # wired here, on top, so that surveys never imports the figures.
    __doc__ = surveys_api.PollViewSet.__doc__

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
