"""A NUL character (which PostgreSQL cannot store in text) in any input a page or the API takes
gets a clear refusal or is ignored, never a server error. The registry import's own NUL rule is
in tests/agencies/test_import.py."""

import json

import pytest
from django.urls import reverse

from readiness.models import User
from tests.factories import UserFactory
from tests.surveys.factories import open_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator_client(client):
    client.raise_request_exception = False
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/agencies/?q=a%00b",
        "/audit/?q=a%00b&action=a%00",
        "/polls/?q=a%00",
        "/people/?q=a%00",
        "/api/v1/agencies/?search=a%00b",
        "/api/v1/agencies/?region=a%00",
        "/api/v1/polls/?state=a%00",
        "/api/v1/replies/?updated_since=2020%00",
    ],
)
def test_a_nul_in_a_query_is_never_a_server_error(coordinator_client, url):
    assert coordinator_client.get(url).status_code in (200, 400)


def test_a_nul_in_a_poll_or_an_answer_is_a_field_error(coordinator_client):
    body = {
        "title": "Chicago\u0000", "purpose": "planning", "situation": "emergency",
        "message": "Would you respond?", "destination_name": "Chicago",
        "destination_latitude": 41.88, "destination_longitude": -87.63,
        "target_kinds": ["municipal"], "deadline": "2031-01-01T00:00:00Z",
    }  # fmt: skip
    response = coordinator_client.post("/api/v1/polls/", json.dumps(body), "application/json")
    assert response.status_code == 400 and "Null characters are not allowed" in str(
        response.json()["errors"]["title"]
    )
    invitation, token = open_invitation()
    page = coordinator_client.post(
        reverse("surveys:reply", args=[token]),
        {
            "version": 0,
            "decision": "unavailable",
            "decline_reason": "Storm\x00 duty",
            "authorised_by_name": "Dana Reyes",
            "authorised_by_rank": "Chief",
        },
    )
    assert page.status_code == 422 and "Null characters are not allowed" in page.text
    assert not invitation.poll.replies.exists()
