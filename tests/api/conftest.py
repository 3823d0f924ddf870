import pytest
from django.test import RequestFactory

from readiness.accounts import services
from readiness.models import User
from tests.factories import UserFactory


def api_token(*, role: str, agency=None, name: str = "Integration", issuer=None) -> str:
    """The key of a token issued by a coordinator, as on the API tokens page."""
    request = RequestFactory().post("/api-tokens/")
    request.user = issuer or UserFactory(role=User.Role.COORDINATOR)
    _, key = services.api_token_issue(request=request, name=name, role=role, agency=agency)
    return key


@pytest.fixture
def bearer():
    """bearer(role, agency=None) -> headers that authenticate with a fresh token."""

    def make(role: str, agency=None) -> dict:
        return {"Authorization": f"Bearer {api_token(role=role, agency=agency)}"}

    return make
