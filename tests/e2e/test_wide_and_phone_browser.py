"""The dashboard on an operations-centre wall (1920 px), a laptop (1366 px) and a phone (390 px),
and the compose form's searchable agency list.

On the wall the answers sit beside the breakdowns and the map, one line each; on a phone the
figures and the need come first and the long lists fold behind their headings; no page is ever
wider than its screen; and a coordinator finds one of 276 agencies by typing part of its name."""

import re
import tempfile
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from readiness.models import User
from surveys import replies
from surveys.models import Poll
from tests.e2e.conftest import new_page
from tests.e2e.test_layout_browser import OVERFLOWING
from tests.e2e.test_registry_browser import sign_in
from tests.factories import (
    AgencyFactory,
    ContactFactory,
    RegionFactory,
    SpecialTeamFactory,
    TeamTypeFactory,
    UserFactory,
)
from tests.surveys.factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path(tempfile.gettempdir()) / "shots"  # screenshots to look at: /tmp/shots
LONG_WORD = "x" * 2000  # user text that must never widen a page
ANSWERS, DECLINES, SILENT = 40, 6, 10
WIDTH_AND_HEIGHT = "[document.documentElement.scrollWidth, window.innerWidth]"


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def poll_with_long_lists() -> Poll:
    """An open poll with a need, 40 answers (a few with conditions, one from an agency with a
    very long name), 6 declines and 10 agencies that have not answered."""
    swat = TeamTypeFactory(code="swat")
    region = RegionFactory(name="Region 1 - Northeast")
    poll = PollFactory(
        title="Critical situations in Chicago",
        state=Poll.State.OPEN,
        sent_at=timezone.now() - timezone.timedelta(hours=2),
        officers_needed=300,
    )
    for i in range(ANSWERS + DECLINES + SILENT):
        name = f"Northern Illinois Metropolitan Police Department {i}"
        if i == 1:
            name = "Long" + "n" * 190  # one unbroken word
        agency = AgencyFactory(name=name, region=region, latitude=41.5 + i / 100, longitude=-88)
        team = SpecialTeamFactory(agency=agency, team_type=swat, members=24)
        invitation, _ = open_invitation(agency=agency, poll=poll)
        if i >= ANSWERS + DECLINES:
            continue  # not answered
        if i >= ANSWERS:
            answer = {"decision": "unavailable", "decline_reason": LONG_WORD}
            lines = []
        else:
            answer = {"decision": "available", "authorised_by_name": "Pat Chief of Police"}
            if i % 5 == 0:
                answer.update(
                    decision="conditional",
                    conditions=["emergencies_only"],
                    conditions_text="Only with the sheriff's approval " + LONG_WORD,
                )
            lines = [
                {"team": team, "estimate": 60, "officers": 6 + i % 7,
                 "depart_minutes": 15 + i, "travel_minutes": 55}
            ]  # fmt: skip
        replies.reply_submit(
            poll=poll, agency=agency, answer=answer, lines=lines, base_version=0,
            invitation=invitation, confirm=False,
        )  # fmt: skip
    return poll


@pytest.fixture(autouse=True)
def offline_map_and_quick_updates(settings):
    settings.MAP_TILES_URL = ""  # no network here: the map draws on a plain background
    settings.DASHBOARD_REFRESH_SECONDS = 1


def open_dashboard(browser, live_server, poll, width: int, email: str):
    page = new_page(browser, viewport={"width": width, "height": 900})
    sign_in(page, live_server, email, next_url=f"/polls/{poll.pk}/dashboard/")
    page.wait_for_url(f"**/polls/{poll.pk}/dashboard/")
    expect(page.locator('[data-figure="replied"]')).to_contain_text(str(ANSWERS + DECLINES))
    return page


def test_on_a_wall_screen_the_answers_sit_beside_the_breakdowns_one_line_each(live_server, browser):
    poll = poll_with_long_lists()
    official = UserFactory(role=User.Role.OFFICIAL, email="wall@readiness.example")
    page = open_dashboard(browser, live_server, poll, 1920, official.email)
    answers = page.locator("#replies")
    expect(answers.locator("details.fold")).to_have_js_property("open", True)  # open on a wall
    expect(answers.locator("tbody tr")).to_have_count(ANSWERS + DECLINES)
    expect(page.locator("#map")).to_have_attribute("data-points", str(ANSWERS + DECLINES + SILENT))
    shot(page, "dashboard-1920")

    table = answers.bounding_box()
    for side in (page.locator("section", has=page.locator("#types-title")),
                 page.locator("section", has=page.locator("#map-title"))):  # fmt: skip
        box = side.bounding_box()
        assert box["x"] >= table["x"] + table["width"], (table, box)  # to the right of it
    by_type = page.locator("section", has=page.locator("#types-title")).bounding_box()
    assert abs(by_type["y"] - table["y"]) < 5, (table, by_type)  # and level with it

    # One line per answer, whatever its length: the long name and the 2,000-character
    # conditions end in an ellipsis (their title holds them whole) instead of wrapping.
    rows = page.evaluate(
        """() => [...document.querySelectorAll('#replies tbody tr')].map(row => [
            row.getBoundingClientRect().height,
            parseFloat(getComputedStyle(row.querySelector('th')).lineHeight)])"""
    )
    assert all(height < 2 * line for height, line in rows), rows
    long_name = answers.locator("tbody th", has_text="Long" + "n" * 20)
    expect(long_name).to_have_attribute("title", "Long" + "n" * 190 + " · Region 1 - Northeast")
    assert page.evaluate(WIDTH_AND_HEIGHT) == [1920, 1920]
    assert page.evaluate(OVERFLOWING) == []
    page.context.close()


def test_on_a_phone_the_figures_come_first_and_the_long_lists_fold(live_server, browser):
    poll = poll_with_long_lists()
    official = UserFactory(role=User.Role.OFFICIAL, email="phone@readiness.example")
    page = open_dashboard(browser, live_server, poll, 390, official.email)
    shot(page, "dashboard-390")

    def top(selector: str) -> float:
        return page.locator(selector).bounding_box()["y"]

    need = top("section.need")
    assert top(".headline") < need < top("#map") < top("#replies") < top("#declines")
    assert top("#declines") < top("#silent")
    for fold, summary in [
        ("#replies-fold", f"Answers ({ANSWERS + DECLINES})"),
        ("#declines-fold", f"Declined ({DECLINES})"),
        ("#silent-fold", f"Not answered ({SILENT} agencies)"),
    ]:
        expect(page.locator(fold)).to_have_js_property("open", False)
        expect(page.locator(f"{fold} > summary")).to_have_text(summary, use_inner_text=True)
    expect(page.locator("#replies tbody tr").first).to_be_hidden()
    folded = page.evaluate("document.documentElement.scrollHeight")
    assert folded < 6000, folded
    assert page.evaluate(WIDTH_AND_HEIGHT) == [390, 390]

    # A tap on a heading unfolds its list (plain <details>: no script needed for that), and
    # the long words inside still wrap within the screen.
    for fold in ("#replies-fold", "#declines-fold", "#silent-fold"):
        page.locator(f"{fold} > summary").click()
        expect(page.locator(fold)).to_have_js_property("open", True)
    expect(page.locator("#replies tbody tr").first).to_be_visible()
    expect(page.locator("#declines")).to_contain_text("xxxxxxxxxx", use_inner_text=True)
    assert page.evaluate("document.documentElement.scrollHeight") > 2 * folded  # it was folded
    assert page.evaluate(WIDTH_AND_HEIGHT) == [390, 390]
    assert page.evaluate(OVERFLOWING) == []

    # A live update keeps each list as the reader left it.
    page.locator("#declines-fold > summary").click()
    expect(page.locator("#declines-fold")).to_have_js_property("open", False)
    stamp = page.locator("#live").get_attribute("data-stamp")
    invitation = poll.invitations.filter(agency__replies__isnull=True).first()
    replies.reply_submit(
        poll=poll, agency=invitation.agency, answer={"decision": "unavailable",
        "decline_reason": "Short-staffed"}, lines=[], base_version=0, invitation=invitation,
        confirm=False,
    )  # fmt: skip
    expect(page.locator("#live")).not_to_have_attribute("data-stamp", stamp)
    expect(page.locator("#replies-fold")).to_have_js_property("open", True)
    expect(page.locator("#declines-fold")).to_have_js_property("open", False)
    expect(page.locator("#silent-fold")).to_have_js_property("open", True)
    page.context.close()


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_dashboard_overview_and_compose_are_as_wide_as_the_screen(live_server, browser, width):
    poll = poll_with_long_lists()
    coordinator = UserFactory(role=User.Role.COORDINATOR, email=f"fit{width}@readiness.example")
    page = open_dashboard(browser, live_server, poll, width, coordinator.email)
    if width == 1366:
        shot(page, "dashboard-1366")
    assert page.evaluate(WIDTH_AND_HEIGHT) == [width, width], "dashboard"
    assert page.evaluate(OVERFLOWING) == [], "dashboard"

    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("heading", name="Standing readiness")).to_be_visible()
    expect(page.locator("table.standing").first).to_contain_text("Region 1 - Northeast")
    shot(page, f"overview-{width}")
    assert page.evaluate(WIDTH_AND_HEIGHT) == [width, width], "overview"
    assert page.evaluate(OVERFLOWING) == [], "overview"

    page.goto(f"{live_server.url}/polls/new/")
    page.get_by_label("Title").fill("Layout check")
    page.get_by_label("Destination", exact=True).select_option(label="Chicago (City Hall)")
    page.get_by_label("Region 1 - Northeast").check()
    preview = page.locator("#preview")
    expect(preview).to_contain_text(f"{ANSWERS + DECLINES + SILENT} agencies")
    if width == 1366:
        shot(page, "compose-1366")
    assert page.evaluate(WIDTH_AND_HEIGHT) == [width, width], "compose"
    assert page.evaluate(OVERFLOWING) == [], "compose"
    if width >= 1366:
        # The recipient preview sits beside the form, its table whole inside it. (It is sticky:
        # compare them at the top of the page.)
        page.evaluate("window.scrollTo(0, 0)")
        form, beside = page.locator("form.poll-form").bounding_box(), preview.bounding_box()
        assert beside["x"] >= form["x"] + form["width"], (form, beside)
        assert abs(beside["y"] - form["y"]) < 5, (form, beside)
        assert preview.evaluate("el => el.querySelector('table').scrollWidth <= el.clientWidth")
    page.context.close()


def compose_world():
    region = RegionFactory(name="Region 1 - Northeast")
    for name in ("Naperville Police Department", "Aurora Police Department",
                 "North Aurora Police Department", "Joliet Police Department"):  # fmt: skip
        ContactFactory(agency=AgencyFactory(name=name, region=region), role="primary")
    return UserFactory(role=User.Role.COORDINATOR, email="composer@readiness.example")


def test_a_coordinator_finds_an_agency_by_typing_part_of_its_name(live_server, browser):
    coordinator = compose_world()
    page = new_page(browser, viewport={"width": 1366, "height": 900})
    sign_in(page, live_server, coordinator.email, next_url="/polls/new/")
    page.wait_for_url("**/polls/new/")
    page.get_by_label("Title").fill("Joliet by search")
    page.get_by_label("Destination", exact=True).select_option(label="Chicago (City Hall)")

    search = page.get_by_role("searchbox", name="Also ask these agencies")
    agencies = page.get_by_role("group", name="Also ask these agencies")
    expect(page.locator("#id_target_agencies")).to_be_hidden()  # replaced by the list
    expect(page.locator("#id_target_agencies_count")).to_have_text("0 selected")
    search.fill("auro")
    expect(agencies.locator(".picker-option:visible")).to_have_text(
        ["Aurora Police Department", "North Aurora Police Department"]
    )
    search.fill("JOLIET P")  # any case
    expect(agencies.locator(".picker-option:visible")).to_have_text(["Joliet Police Department"])
    search.press("Enter")  # filters; never submits the form
    agencies.get_by_text("Joliet Police Department", exact=True).click()  # a plain click ticks it
    joliet = agencies.get_by_role("checkbox", name="Joliet Police Department", exact=True)
    expect(joliet).to_be_checked()
    expect(page.locator("#id_target_agencies_count")).to_have_text("1 selected")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("1 agency", use_inner_text=True)
    expect(preview).to_contain_text("Joliet Police Department")

    search.fill("")
    expect(agencies.locator(".picker-option:visible")).to_have_count(4)
    # The keyboard: down from the search box into the list, space ticks, one tab stop.
    search.fill("naper")
    search.press("ArrowDown")
    page.keyboard.press("Space")
    expect(page.locator("#id_target_agencies_count")).to_have_text("2 selected")
    agencies.get_by_text("Naperville Police Department", exact=True).click()  # and a click unticks
    expect(page.locator("#id_target_agencies_count")).to_have_text("1 selected")

    page.get_by_role("button", name="Save draft and preview recipients").click()
    page.wait_for_url(re.compile(r"/polls/\d+/$"))  # the saved draft
    poll = Poll.objects.get(title="Joliet by search")
    assert [a.name for a in poll.target_agencies.all()] == ["Joliet Police Department"]
    page.context.close()


def test_without_javascript_the_plain_select_still_works(live_server, browser):
    coordinator = compose_world()
    page = new_page(browser, viewport={"width": 1366, "height": 900}, java_script_enabled=False)
    sign_in(page, live_server, coordinator.email, next_url="/polls/new/")
    page.wait_for_url("**/polls/new/")
    expect(page.locator(".picker")).to_have_count(0)
    page.get_by_label("Title").fill("Aurora without scripts")
    page.get_by_label("Destination", exact=True).select_option(label="Chicago (City Hall)")
    page.get_by_label("Also ask these agencies").select_option(label="Aurora Police Department")
    page.get_by_role("button", name="Save draft and preview recipients").click()
    page.wait_for_url(re.compile(r"/polls/\d+/$"))  # the saved draft
    poll = Poll.objects.get(title="Aurora without scripts")
    assert [a.name for a in poll.target_agencies.all()] == ["Aurora Police Department"]
    page.context.close()
