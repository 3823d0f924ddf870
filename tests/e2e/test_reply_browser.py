"""A commander follows the link from a real poll email on a phone, answers, changes the answer."""

import re

import pytest
from playwright.sync_api import expect

from agencies.models import Contact
from readiness.models import User
from surveys import compose
from surveys.models import Reply, ReplyVersion
from tests.e2e.conftest import new_page
from tests.e2e.test_registry_browser import fits_the_screen
from tests.factories import (
    AgencyFactory,
    ContactFactory,
    SpecialTeamFactory,
    TeamTypeFactory,
    UserFactory,
)
from tests.surveys.factories import PollFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_commander_answers_from_the_email_on_a_phone(
    live_server,
    phone,
    artifacts,
    smtp_sink,
    settings,
):
    settings.SITE_URL = live_server.url  # links in the emails point at this server
    agency = AgencyFactory(name="Lake County Sheriff", latitude=42.36, longitude=-87.83)
    contact = ContactFactory(agency=agency, role=Contact.Role.PRIMARY, name="Sam Ortiz",
                             email="sortiz@lakecounty.example")  # fmt: skip
    swat = TeamTypeFactory(code="swat")
    SpecialTeamFactory(agency=agency, team_type=swat, name="Lake County SRT", members=14)
    SpecialTeamFactory(agency=agency, team_type=TeamTypeFactory(code="mff"),
                       name="Lake County MFF", members=40)  # fmt: skip
    coordinator = UserFactory(role=User.Role.COORDINATOR, full_name="Casey Coordinator")
    poll = PollFactory(
        title="Critical situations in Chicago",
        created_by=coordinator,
        target_agencies=[agency],
        requirements=["Current SWAT certification"],
    )
    poll.target_team_types.set([swat])
    compose.poll_send(poll=poll)  # commits: the eager task delivers to the SMTP sink

    [invitation] = smtp_sink.to(contact.email)
    link = re.search(
        r"(http://\S+/r/[\w-]+/)", invitation.message.get_body(("plain",)).get_content()
    )[1]

    phone.goto(link)
    title = phone.locator("h1")
    expect(title).to_contain_text("Critical situations in Chicago", use_inner_text=True)
    srt = phone.locator("fieldset.team-line", has_text="Lake County SRT")
    # The estimate is prefilled; the other team waits behind "Add your agency's other teams".
    expect(srt.get_by_label("Minutes of travel")).not_to_have_value("")
    expect(phone.locator("fieldset.team-line", has_text="Lake County MFF")).to_be_hidden()
    phone.get_by_label("Available", exact=True).check()
    srt.get_by_label("Officers available").fill("8")
    srt.get_by_label("Minutes until they can leave").fill("30")
    srt.get_by_label("Of them, meeting every requirement").fill("6")
    phone.get_by_label("Authorised by (name)").fill("Dana Reyes")
    phone.get_by_label("Rank or title").fill("Sheriff")
    assert fits_the_screen(phone)
    phone.screenshot(path=str(artifacts / "reply-form-phone.png"), full_page=True)

    # A mistake first: more officers than the team has. Explained beside the field.
    srt.get_by_label("Officers available").fill("80")
    phone.get_by_role("button", name="Send answer").click()
    summary = phone.locator(".error-summary")
    expect(summary).to_contain_text("Nothing was saved", use_inner_text=True)
    expect(srt).to_contain_text("At most 14", use_inner_text=True)
    # Where the eye lands after the submit: focused, and inside the phone's screen.
    expect(summary).to_be_focused()
    box, height = summary.bounding_box(), phone.viewport_size["height"]
    assert box is not None and 0 <= box["y"] < height and box["y"] + 40 < height, box
    expect(summary.get_by_role("link").first).to_be_visible()
    phone.screenshot(path=str(artifacts / "reply-form-error-phone.png"))
    srt.get_by_label("Officers available").fill("8")
    phone.get_by_role("button", name="Send answer").click()

    phone.get_by_text("your answer is recorded").wait_for()
    expect(phone.locator("main")).to_contain_text("Dana Reyes", use_inner_text=True)
    assert fits_the_screen(phone)
    phone.screenshot(path=str(artifacts / "reply-confirmed-phone.png"), full_page=True)

    # Change it: open the other teams and add the MFF.
    phone.get_by_role("link", name="Change the answer").click()
    phone.get_by_text("Add your agency's other teams").click()
    mff = phone.locator("fieldset.team-line", has_text="Lake County MFF")
    mff.get_by_label("Officers available").fill("20")
    mff.get_by_label("Minutes until they can leave").fill("45")
    phone.get_by_role("button", name="Save changed answer").click()
    phone.get_by_text("your answer is recorded").wait_for()
    facts = phone.locator(".facts").first
    expect(facts).to_contain_text("28", use_inner_text=True)  # 8 + 20 officers

    reply = Reply.objects.get()
    assert (reply.version, reply.officers) == (2, 28)
    assert ReplyVersion.objects.count() == 2
    confirmations = [
        m for m in smtp_sink.to(contact.email) if "Answer recorded" in m.message["Subject"]
    ]
    assert len(confirmations) == 2
    assert "Lake County MFF: officers: 20" in confirmations[-1].message.get_content()


def test_the_form_works_without_javascript(live_server, browser, artifacts):
    from tests.surveys.factories import open_invitation

    invitation, token = open_invitation()
    team = SpecialTeamFactory(agency=invitation.agency, name="Metro SRT", members=10)
    page = new_page(browser, viewport={"width": 375, "height": 812}, java_script_enabled=False)
    page.goto(f"{live_server.url}/r/{token}/")
    page.get_by_label("Unavailable").check()
    page.get_by_label("Why not?").fill("All officers committed locally.")
    page.get_by_role("button", name="Send answer").click()
    page.get_by_text("your answer is recorded").wait_for()
    assert Reply.objects.get().decision == "unavailable"
    # A decline records no team lines.
    expect(page.locator("main")).not_to_contain_text(team.name, use_inner_text=True)
    page.context.close()


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_a_failed_submit_puts_the_summary_where_the_eye_lands(
    live_server, browser, artifacts, width
):
    from tests.surveys.factories import open_invitation

    agency = AgencyFactory(name=f"Evanston PD {width}")
    SpecialTeamFactory(agency=agency, team_type=TeamTypeFactory(code=f"swat{width}"), members=12)
    _, token = open_invitation(agency=agency)
    page = new_page(browser, viewport={"width": width, "height": 800})
    page.goto(f"{live_server.url}/r/{token}/")
    page.get_by_label("Unavailable", exact=True).check()
    # No reason given: one error, linked to its field.
    page.get_by_role("button", name="Send answer").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    box = summary.bounding_box()
    assert box is not None and 0 <= box["y"] < 800 and box["y"] + 40 < 800, box
    expect(summary.get_by_role("link")).to_have_count(1)  # one clear error, linked to its field
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"reply-error-{width}.png"))
    assert not Reply.objects.exists()
    page.context.close()
