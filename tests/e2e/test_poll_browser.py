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


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_add_an_agency_to_an_open_poll_and_reissue_a_link(
    live_server, browser, artifacts, mailoutbox, width
):
    from surveys import compose
    from surveys.models import Invitation, Poll
    from tests.surveys.factories import PollFactory

    region = RegionFactory(name=f"Region {width}")
    first = AgencyFactory(name=f"Elgin PD {width}", region=region)
    ContactFactory(agency=first, role=Contact.Role.PRIMARY, email=f"elgin{width}@pd.example")
    late = AgencyFactory(name=f"Batavia PD {width}", region=region)
    ContactFactory(agency=late, role=Contact.Role.PRIMARY, email=f"batavia{width}@pd.example")
    user = UserFactory(role=User.Role.COORDINATOR, email=f"coord{width}@readiness.example")
    poll = PollFactory(target_agencies=[first], created_by=user, title=f"In flight {width}")
    compose.poll_send(poll=poll)
    page = new_page(browser, viewport={"width": width, "height": 900})
    sign_in(page, live_server, user.email, next_url=f"/polls/{poll.pk}/")
    page.wait_for_url(f"**/polls/{poll.pk}/")

    page.get_by_role("link", name="Add agencies").click()
    page.get_by_role("searchbox", name="Agencies to invite").fill("batavia")
    picker = page.get_by_role("group", name="Agencies to invite")
    picker.get_by_text(late.name, exact=True).click()
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"add-agencies-{width}.png"), full_page=True)
    page.get_by_role("button", name="Invite the chosen agencies").click()
    # The confirmation step names what goes out before anything does.
    expect(page.get_by_role("heading", name="Invite 1 more agency?")).to_be_visible()
    assert not Invitation.objects.filter(poll=poll, agency=late).exists()
    page.get_by_role("button", name="Invite 1 agency now").click()
    page.wait_for_url(f"**/polls/{poll.pk}/")
    expect(page.locator(".messages")).to_contain_text(f"Invited 1: {late.name}")
    added = Invitation.objects.get(poll=poll, agency=late)
    expect(page.get_by_text(late.name, exact=True).first).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Re-issue the link of {first.name}").click()
    expect(page.locator(".messages")).to_contain_text("A new link is on its way")
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"poll-in-flight-{width}.png"), full_page=True)
    assert Poll.objects.get(pk=poll.pk).state == Poll.State.OPEN
    assert added.email == f"batavia{width}@pd.example"
    assert sorted(m.to[0] for m in mailoutbox).count(f"elgin{width}@pd.example") == 2
    page.context.close()


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_the_draft_warns_and_asks_before_sending(
    live_server, browser, artifacts, mailoutbox, width
):
    from datetime import timedelta

    from django.utils import timezone

    from surveys.models import Poll
    from tests.surveys.factories import PollFactory

    agency = AgencyFactory(name=f"Joliet PD {width}")
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    user = UserFactory(role=User.Role.COORDINATOR, email=f"send{width}@readiness.example")
    poll = PollFactory(target_agencies=[agency], created_by=user, title=f"Checks {width}",
                       deadline=timezone.now() + timedelta(hours=3),
                       reminder_hours_before=[24, 1])  # fmt: skip
    page = new_page(browser, viewport={"width": width, "height": 900})
    sign_in(page, live_server, user.email, next_url=f"/polls/{poll.pk}/")
    page.wait_for_url(f"**/polls/{poll.pk}/")
    checks = page.get_by_role("alert").filter(has_text="Check before sending")
    expect(checks).to_contain_text("24-hour reminder would fall before now", use_inner_text=True)
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"draft-checks-{width}.png"), full_page=True)
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Send to 1 agency").click()
    expect(page.get_by_role("button", name="Send to 1 agency")).to_be_visible()
    assert asked and "Sending cannot be undone" in asked[0]
    assert Poll.objects.get(pk=poll.pk).state == Poll.State.DRAFT and mailoutbox == []
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send to 1 agency").click()
    expect(page.locator(".messages")).to_contain_text("Sending to 1 agency")
    assert Poll.objects.get(pk=poll.pk).state == Poll.State.OPEN
    page.context.close()
