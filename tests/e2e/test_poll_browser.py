"""A coordinator composes a poll for Chicago, previews recipients, sends, and watches delivery."""

import re

import pytest
from playwright.sync_api import expect

from agencies.models import Contact
from readiness.models import User
from tests.e2e.conftest import new_page
from tests.e2e.test_registry_browser import fits_the_screen, sign_in
from tests.factories import AgencyFactory, ContactFactory, RegionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_compose_preview_send_and_watch(live_server, browser, artifacts, mailoutbox):
    region = RegionFactory(name="Region 1 - Northeast")
    for i in range(4):
        agency = AgencyFactory(name=f"Suburb {i} PD", region=region, latitude=41.9 + i / 20)
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    AgencyFactory(name="Unreachable PD", region=region)
    user = UserFactory(role=User.Role.COORDINATOR, email="coord@readiness.example")
    page = new_page(browser, viewport={"width": 1100, "height": 900})

    sign_in(page, live_server, user.email, next_url="/polls/new/")
    page.wait_for_url("**/polls/new/")
    page.get_by_label("Title").fill("Critical situations in Chicago")
    page.get_by_label("Destination", exact=True).select_option(label="Chicago (City Hall)")
    page.get_by_label("Region 1 - Northeast").check()
    # The preview beside the form updates as targets change, before anything is saved.
    page.locator("#preview").get_by_text("5 agencies").wait_for()
    expect(page.locator("#preview")).to_contain_text("Unreachable PD", use_inner_text=True)
    page.get_by_role("button", name="Save draft and preview recipients").click()

    page.wait_for_url(re.compile(r"/polls/\d+/$"))  # the saved draft; "**/polls/*/" is new/ too
    recipients = page.locator("#recipients ~ p").first
    expect(recipients).to_contain_text("5 agencies", use_inner_text=True)
    unreachable = page.get_by_role("alert").filter(has_text="no usable contact")
    expect(unreachable).to_contain_text("Unreachable PD", use_inner_text=True)
    page.screenshot(path=str(artifacts / "poll-preview.png"), full_page=True)

    # Sending asks first: dismissed, nothing is sent; accepted, it goes.
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_role("button", name="Send to 4 agencies").click()  # not the unreachable one
    expect(page.get_by_role("button", name="Send to 4 agencies")).to_be_visible()
    assert questions and "to 4 agencies now? Sending cannot be undone." in questions[0]
    assert mailoutbox == []
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_role("button", name="Send to 4 agencies").click()
    page.locator(".progress-line .done").wait_for()
    progress = page.locator(".progress-line")
    expect(progress).to_contain_text("all sent", use_inner_text=True)
    expect(progress).to_contain_text("4 sent", use_inner_text=True)
    page.screenshot(path=str(artifacts / "poll-sent.png"), full_page=True)
    assert len(mailoutbox) == 4
    page.set_viewport_size({"width": 375, "height": 800})
    assert fits_the_screen(page)
