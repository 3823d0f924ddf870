"""A request body over Django's limit: the app's own page on pages, the documented JSON error
body under /api/, 413 for both, and nothing saved."""

import json

import pytest
from django.urls import reverse

from readiness.models import User
from surveys.models import Poll, Reply
from tests.factories import UserFactory
from tests.surveys.factories import open_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    return settings


def test_an_oversized_answer_gets_the_apps_page_and_saves_nothing(client, small_limit):
    client.raise_request_exception = False
    _, token = open_invitation()
    response = client.post(
        reverse("surveys:reply", args=[token]),
        {"version": 0, "decision": "unavailable", "decline_reason": "x" * 20_000},
    )
    assert response.status_code == 413
    assert "That was more than the app accepts" in response.text
    assert "Nothing was saved" in response.text and "<html" in response.text
    assert not Reply.objects.exists()


def test_an_oversized_api_body_gets_the_json_error_body(client, small_limit):
    client.raise_request_exception = False
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    body = json.dumps({"title": "Chicago", "message": "m" * 20_000})
    response = client.post(reverse("api:poll-list"), body, "application/json")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    error = response.json()
    assert (error["status"], error["code"]) == (413, "request_too_large")
    assert "larger than" in error["detail"] and error["errors"] == {}
    assert not Poll.objects.exists()
