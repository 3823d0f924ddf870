"""API tokens: coordinators issue and revoke them on a page; a key is shown once and only its
hash is kept; revoked, expired and wrong keys are refused, and guessing is rate limited."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from readiness.accounts.services import api_token_hash
from readiness.models import ApiToken, AuditEvent, User
from tests.factories import AgencyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator_client(db):
    coordinator = Client()
    coordinator.force_login(UserFactory(role=User.Role.COORDINATOR, full_name="Casey Coordinator"))
    return coordinator


def issue(client, **data) -> str:
    response = client.post(reverse("api-tokens"), {"expires_in": "90", **data})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    return re.search(r'value="(rdy_[^"]+)"', response.text)[1]


def test_a_coordinator_issues_a_token_that_works_once_shown(coordinator_client, client):
    key = issue(coordinator_client, name="Cook County EOC <wall>", role="official")
    token = ApiToken.objects.get()
    assert token.key_hash == api_token_hash(key) and key not in str(token.__dict__)
    assert token.user.role == User.Role.OFFICIAL and not token.user.has_usable_password()
    assert token.expires_at > timezone.now() + timedelta(days=89)
    page = coordinator_client.get(reverse("api-tokens")).text
    assert key not in page  # shown once
    assert "Cook County EOC &lt;wall&gt;" in page and token.prefix in page
    assert AuditEvent.objects.filter(action="api_token.issue", object_id=str(token.pk)).exists()
    me = client.get(reverse("api:me"), headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    assert me.json()["role"] == "official" and me.json()["token"] == "Cook County EOC <wall>"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_commanders_token_needs_an_agency_and_is_scoped_to_it(coordinator_client, client):
    response = coordinator_client.post(
        reverse("api-tokens"), {"name": "CAD", "role": "commander", "expires_in": "30"}
    )
    assert response.status_code == 422
    assert "Choose the agency this token answers for." in response.text
    agency, other = AgencyFactory(), AgencyFactory()
    key = issue(coordinator_client, name="CAD", role="commander", agency=agency.pk)
    agencies = client.get(reverse("api:agency-list"), headers={"Authorization": f"Bearer {key}"})
    assert [a["id"] for a in agencies.json()["results"]] == [agency.pk]
    assert other.pk not in [a["id"] for a in agencies.json()["results"]]


def test_a_revoked_token_stops_working_at_once(coordinator_client, client):
    key = issue(coordinator_client, name="EOC", role="official")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(reverse("api:poll-list"), headers=headers).status_code == 200
    token = ApiToken.objects.get()
    response = coordinator_client.post(reverse("api-token-revoke", args=[token.pk]))
    assert response.status_code == 302
    refused = client.get(reverse("api:poll-list"), headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "This token is unknown, expired or revoked."
    token.refresh_from_db()
    assert token.revoked_at and token.revoked_by.full_name == "Casey Coordinator"
    assert AuditEvent.objects.filter(action="api_token.revoke").count() == 1
    assert "Revoked" in coordinator_client.get(reverse("api-tokens")).text


def test_an_expired_token_is_refused(coordinator_client, client):
    key = issue(coordinator_client, name="EOC", role="official")
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.get(reverse("api:me"), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401


def test_wrong_keys_are_rate_limited_per_address(client, settings, monkeypatch):
    from readiness import ratelimit

    settings.API_TOKEN_RATE_LIMIT = 3
    headers = {"Authorization": "Bearer rdy_guess"}
    statuses = [client.get(reverse("api:me"), headers=headers).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert client.get(reverse("api:me"), headers=headers).json()["code"] == "throttled"
    later = ratelimit._now() + settings.API_TOKEN_RATE_WINDOW  # the next window starts afresh
    monkeypatch.setattr(ratelimit, "_now", lambda: later)
    assert client.get(reverse("api:me"), headers=headers).status_code == 401


def test_a_malformed_authorization_header_is_explained(client):
    response = client.get(reverse("api:me"), headers={"Authorization": "Bearer two words"})
    assert response.status_code == 401
    assert "Authorization: Bearer <key>" in response.json()["detail"]


def test_service_accounts_are_not_people(coordinator_client):
    issue(coordinator_client, name="EOC", role="official")
    people = coordinator_client.get(reverse("people")).text
    assert "API token: EOC" not in people


def test_only_coordinators_manage_tokens(client):
    for role in (User.Role.OFFICIAL, User.Role.COMMANDER):
        user = UserFactory(role=role, agency=AgencyFactory() if role == "commander" else None)
        client.force_login(user)
        assert client.get(reverse("api-tokens")).status_code == 403
        data = {"name": "x", "role": "coordinator", "expires_in": ""}
        assert client.post(reverse("api-tokens"), data).status_code == 403
    assert ApiToken.objects.count() == 0


def test_a_token_cannot_sign_in_to_the_pages(coordinator_client, client):
    key = issue(coordinator_client, name="EOC", role="coordinator")
    response = client.get(reverse("people"), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_tokens_service_account_cannot_be_edited_as_a_person(coordinator_client):
    """Its role is the token's: changing it would widen the token behind the issuer's back."""
    issue(coordinator_client, name="EOC", role="official")
    account = ApiToken.objects.get().user
    url = reverse("person-edit", args=[account.pk])
    assert coordinator_client.get(url).status_code == 404
    data = {"full_name": "x", "role": "coordinator", "is_active": "on"}
    assert coordinator_client.post(url, data).status_code == 404
    account.refresh_from_db()
    assert account.role == User.Role.OFFICIAL
