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
