"""/api/v1/me/: who the credentials belong to (role, agency, token), for an integrator checking
its set-up."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from readiness import permissions


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.CharField()
    agency = serializers.IntegerField(allow_null=True, help_text="A commander's agency id.")
    token = serializers.CharField(allow_null=True, help_text="The token's name, if one is used.")


class MeView(APIView):
    """Who the credentials belong to: role, agency and token."""

    rules = {"read": permissions.can_view_registry}

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        user = request.user
        data = {
            "id": user.pk,
            "name": user.get_full_name(),
            "email": user.email,
            "role": user.role,
            "agency": user.agency_id,
            "token": request.auth.name if request.auth is not None else None,
        }
        return Response(MeSerializer(data).data)
