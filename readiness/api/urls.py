"""/api/v1/: the router of every API endpoint, plus /api/schema/ and /api/docs/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import routers

from agencies import api as agencies_api
from readiness import permissions
from readiness.dashboards import api as dashboards_api
from surveys import api as surveys_api

from . import me


class Router(routers.DefaultRouter):
    include_format_suffixes = False

    class APIRootView(routers.APIRootView):
        """The API's endpoints. See /api/docs/ for every one, with its parameters."""

        rules = {"read": permissions.can_view_registry}


router = Router()
router.register("regions", agencies_api.RegionViewSet, basename="region")
router.register("team-types", agencies_api.TeamTypeViewSet, basename="team-type")
router.register("agencies", agencies_api.AgencyViewSet, basename="agency")
router.register("teams", agencies_api.SpecialTeamViewSet, basename="team")
router.register("contacts", agencies_api.ContactViewSet, basename="contact")
router.register("team-members", agencies_api.TeamMemberViewSet, basename="team-member")
router.register("polls", dashboards_api.PollViewSet, basename="poll")
router.register("invitations", surveys_api.InvitationViewSet, basename="invitation")
router.register("replies", surveys_api.ReplyViewSet, basename="reply")

# Views outside the router, with their names: the permission matrix covers these too.
EXTRA = [
    path("readiness/", dashboards_api.StandingReadinessView.as_view(), name="standing-readiness"),
    path("me/", me.MeView.as_view(), name="me"),
]

urlpatterns = [
    path("v1/", include((router.urls + EXTRA, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
