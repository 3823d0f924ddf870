"""A commander follows the link from a real poll email on a phone, answers, changes the answer."""

import re

import pytest

from agencies.models import Contact
from readiness.models import User
from surveys import services
from surveys.models import Reply, ReplyVersion
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
    services.poll_send(poll=poll)  # commits: the eager task delivers to the SMTP sink

    [invitation] = smtp_sink.to(contact.email)
    link = re.search(
        r"(http://\S+/r/[\w-]+/)", invitation.message.get_body(("plain",)).get_content()
    )[1]

    phone.goto(link)
    assert "Critical situations in Chicago" in phone.locator("h1").inner_text()
    srt = phone.locator("fieldset.team-line", has_text="Lake County SRT")
    # The estimate is prefilled; the other team waits behind "Add your agency's other teams".
    assert srt.get_by_label("Minutes of travel").input_value() != ""
    assert not phone.locator("fieldset.team-line", has_text="Lake County MFF").is_visible()
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
    assert "Nothing was saved" in phone.get_by_role("alert").inner_text()
    assert "At most 14" in srt.inner_text()
    srt.get_by_label("Officers available").fill("8")
    phone.get_by_role("button", name="Send answer").click()

    phone.get_by_text("your answer is recorded").wait_for()
    assert "Dana Reyes" in phone.locator("main").inner_text()
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
    assert "28" in phone.locator(".facts").first.inner_text()  # 8 + 20 officers

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
    context = browser.new_context(viewport={"width": 375, "height": 812}, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/r/{token}/")
    page.get_by_label("Unavailable").check()
    page.get_by_label("Why not?").fill("All officers committed locally.")
    page.get_by_role("button", name="Send answer").click()
    page.get_by_text("your answer is recorded").wait_for()
    assert Reply.objects.get().decision == "unavailable"
    assert team.name not in page.locator("main").inner_text()  # a decline records no team lines
    context.close()
