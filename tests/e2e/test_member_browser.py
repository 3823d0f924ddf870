"""A team member answers on a 390 px phone in three taps after opening their link."""

import re

import pytest
from django.test import RequestFactory
from django.utils import timezone
from playwright.sync_api import expect

from agencies.models import TeamMember
from surveys import members
from surveys.models import MemberAsk, Poll
from tests.e2e.conftest import new_page
from tests.e2e.test_registry_browser import fits_the_screen
from tests.factories import AgencyFactory, SpecialTeamFactory, TeamTypeFactory, UserFactory
from tests.surveys.factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_answers_in_three_taps_on_a_phone(live_server, browser, artifacts, mailoutbox,
                                                    settings):  # fmt: skip
    settings.SITE_URL = live_server.url
    agency = AgencyFactory(name="Waukegan PD")
    swat = TeamTypeFactory(code="swat-phone")
    team = SpecialTeamFactory(agency=agency, team_type=swat, name="Waukegan SRT", members=8)
    TeamMember.objects.create(team=team, agency=agency, name="Dana Ruiz", email="dana@pd.example")
    poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now(), title="Lakefront")
    poll.target_team_types.set([swat])
    open_invitation(agency=agency, poll=poll)
    commander = UserFactory(role="commander", agency=agency)

    request = RequestFactory().post("/")  # the commander's forward, as the page makes it
    request.user = commander
    members.members_forward(poll=poll, agency=agency, answer_by=poll.deadline, request=request)
    [message] = [m for m in mailoutbox if "asks:" in m.subject]
    link = re.search(r"(http://\S+/m/[\w-]+/)", message.body)[1]

    page = new_page(browser, viewport={"width": 390, "height": 800}, is_mobile=True)
    page.goto(link)
    expect(page.get_by_role("heading", name="Lakefront")).to_be_visible()
    page.get_by_label("Willing", exact=True).check()  # 1
    page.get_by_label("30 min", exact=True).check()  # 2
    page.get_by_role("button", name="Send my answer").click()  # 3
    expect(page.locator(".notice")).to_contain_text("your answer is recorded")
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / "member-answer-phone.png"), full_page=True)
    ask = MemberAsk.objects.get()
    assert (ask.answer, ask.depart_minutes, ask.start) == ("willing", 30, "station")
    page.context.close()


@pytest.mark.parametrize("width", [390, 1366])
def test_a_commander_ticks_members_to_ask_and_sees_their_tally(
    live_server, browser, artifacts, settings, width
):
    settings.SITE_URL = live_server.url
    agency = AgencyFactory(name="Joliet PD")
    swat = TeamTypeFactory(code=f"swat-tick-{width}")
    team = SpecialTeamFactory(agency=agency, team_type=swat, name="Joliet SRT", members=8)
    for name in ("Ana Diaz", "Ben Cole", "Cy Long"):
        TeamMember.objects.create(team=team, agency=agency, name=name,
                                  email=f"{name.split()[0].lower()}@pd.example")  # fmt: skip
    poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now(), title="Riverwalk")
    poll.target_team_types.set([swat])
    open_invitation(agency=agency, poll=poll)
    commander = UserFactory(role="commander", agency=agency, email=f"cmd{width}@pd.example")
    page = new_page(browser, viewport={"width": width, "height": 900}, is_mobile=width < 600)
    url = f"/my-agency/polls/{poll.pk}/members/"
    page.goto(f"{live_server.url}{url}")
    page.get_by_label("Email").fill(commander.email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{url}")
    page.get_by_text("Choose members instead (3 not asked yet)").click()
    page.get_by_label("Ben Cole, Joliet SRT").check()
    page.get_by_role("button", name="Ask the ticked members").click()
    expect(page.get_by_role("status").or_(page.locator(".messages"))).to_contain_text(
        "Asked 1 member"
    )
    expect(page.get_by_role("table")).to_contain_text("Ben Cole")
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"members-ask-{width}.png"), full_page=True)
    assert list(MemberAsk.objects.values_list("member__name", flat=True)) == ["Ben Cole"]
    page.context.close()
