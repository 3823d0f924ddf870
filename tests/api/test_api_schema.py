"""The OpenAPI schema describes every endpoint, validates, and the docs page serves it."""

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse

from .test_api_permissions import endpoints

pytestmark = pytest.mark.django_db


def test_the_schema_is_valid_openapi_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_every_endpoint_and_method_is_in_the_schema(client):
    schema = yaml.safe_load(client.get(reverse("api-schema")).content)
    documented = {
        (path, method) for path, operations in schema["paths"].items() for method in operations
    }
    for name, method in endpoints():
        if name == "api:api-root":
            continue
        # Detail routes and the detail actions (a poll's send, an agency's verify, ...).
        by_id = name.endswith("-detail") or (
            name.startswith(("api:poll-", "api:agency-", "api:invitation-"))
            and not name.endswith("-list")
        )
        kwargs = {"pk": 1} if by_id else {}
        if name == "api:poll-waves":  # one action, its control in the path
            kwargs["control"] = "pause"
        path = (
            reverse(name, kwargs=kwargs).replace("/1/", "/{id}/").replace("/pause/", "/{control}/")
        )
        assert (path, method) in documented, (path, method)


def test_errors_are_documented_with_their_body(client):
    schema = yaml.safe_load(client.get(reverse("api-schema")).content)
    reply_create = schema["paths"]["/api/v1/replies/"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409"} <= set(reply_create)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"status", "code", "detail", "errors"}


def test_the_docs_page_uses_our_own_static_files_under_the_csp(client):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/" in page
    assert "script-src 'self'" in response["Content-Security-Policy"]
    script = client.get(reverse("api-docs") + "?script=")
    assert script.status_code == 200 and "/api/schema/" in script.content.decode()


def test_what_the_api_gives_for_no_address_is_in_the_schema(client):
    """A text invitation's email is null and a member's without one is "": the schema admits
    both (the API fuzzing checks every response against it)."""
    schema = yaml.safe_load(client.get(reverse("api-schema")).content)["components"]["schemas"]
    assert schema["Invitation"]["properties"]["email"]["nullable"] is True
    member_email = schema["TeamMember"]["properties"]["email"]
    assert {"type": "string", "maxLength": 0} in member_email["oneOf"]
