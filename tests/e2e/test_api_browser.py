"""A coordinator issues an integration's token on the phone, the key works, the docs page
renders under the CSP, and revoking the token stops it."""

import re

import pytest
from playwright.sync_api import expect

from readiness.models import User
from tests.e2e.conftest import new_page
from tests.e2e.test_registry_browser import fits_the_screen, sign_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_issue_use_and_revoke_a_token_and_read_the_docs(live_server, phone, browser, artifacts):
    UserFactory(email="casey@readiness.example", role=User.Role.COORDINATOR)
    page = phone
    sign_in(page, live_server, "casey@readiness.example", next_url="/people/")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("Cook County EOC wall")
    page.get_by_label("Role").select_option("official")
    page.get_by_role("button", name="Issue token").click()
    token = page.get_by_role("textbox", name="Token")
    expect(token).to_have_value(re.compile(r"^rdy_"))
    key = token.input_value()
    assert fits_the_screen(page)
    page.screenshot(path=artifacts / "api-tokens-phone.png", full_page=True)

    headers = {"Authorization": f"Bearer {key}"}
    me = page.request.get(f"{live_server.url}/api/v1/me/", headers=headers)
    assert me.status == 200 and me.json()["token"] == "Cook County EOC wall"

    # The docs page: Swagger UI from our static files, runs with no script allowed by the CSP
    # beyond our own (one inline style it tries is blocked, harmlessly), operations listed.
    docs = new_page(browser, viewport={"width": 1280, "height": 900})
    violations = []
    docs.on("console", lambda m: violations.append(m.text) if "script-src" in m.text else 0)
    docs.goto(f"{live_server.url}/api/docs/")
    expect(docs.locator(".info .title")).to_contain_text("Readiness API")
    docs.locator(".opblock-post .opblock-summary-path", has_text="/api/v1/replies/").click()
    expect(docs.get_by_text("Answer a poll for your agency").first).to_be_visible()
    docs.screenshot(path=artifacts / "api-docs.png")
    assert violations == []
    docs.context.close()

    page.goto(f"{live_server.url}/api-tokens/")
    page.get_by_role("button", name="Revoke Cook County EOC wall").click()
    expect(page.get_by_text("no longer works")).to_be_visible()
    refused = page.request.get(f"{live_server.url}/api/v1/me/", headers=headers)
    assert refused.status == 401
