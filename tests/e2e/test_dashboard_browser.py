"""An official watches a poll's dashboard while an answer arrives: the figures change in place."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from readiness.models import User
from surveys import replies
from surveys.models import Poll
from tests.e2e.conftest import new_page
from tests.e2e.test_registry_browser import fits_the_screen, sign_in
from tests.factories import (
    AgencyFactory,
    RegionFactory,
    SpecialTeamFactory,
    TeamTypeFactory,
    UserFactory,
)
from tests.surveys.factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db(transaction=True)


def answer(invitation, team, officers: int, depart: int, travel: int):
    replies.reply_submit(
        poll=invitation.poll,
        agency=invitation.agency,
        answer={"decision": "available", "authorised_by_name": "Pat Chief"},
        lines=[
            {
                "team": team,
                "estimate": travel,
                "officers": officers,
                "depart_minutes": depart,
                "travel_minutes": travel,
            }
        ],
        base_version=0,
        invitation=invitation,
        confirm=False,
    )


def test_the_dashboard_updates_without_a_reload(live_server, browser, artifacts, settings):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    settings.MAP_TILES_URL = ""  # no network here: the map draws on a plain background
    swat = TeamTypeFactory(code="swat")  # the seeded row, or a new one after a flushing test
    region = RegionFactory(name="Region 1 - Northeast")
    poll = PollFactory(
        title="Critical situations in Chicago",
        state=Poll.State.OPEN,
        sent_at=timezone.now() - timezone.timedelta(hours=2),
        officers_needed=20,
        requirements=["State SWAT certification"],
    )
    invitations, teams = [], []
    for i, (lat, lon) in enumerate([(41.76, -88.32), (41.52, -88.08), (42.04, -87.69)]):
        # The third name carries markup: the map must show it as text, never run it.
        name = "Suburb 2 <img src=x id=pwned> PD" if i == 2 else f"Suburb {i} PD"
        agency = AgencyFactory(name=name, region=region, latitude=lat, longitude=lon)
        teams.append(SpecialTeamFactory(agency=agency, team_type=swat, members=24))
        invitations.append(open_invitation(agency=agency, poll=poll)[0])
    answer(invitations[0], teams[0], 6, 15, 60)  # there at 1 h 15 min
    official = UserFactory(role=User.Role.OFFICIAL, email="official@readiness.example")

    page = new_page(browser, viewport={"width": 1280, "height": 900})
    sign_in(page, live_server, official.email, next_url=f"/polls/{poll.pk}/dashboard/")
    page.wait_for_url(f"**/polls/{poll.pk}/dashboard/")
    available = page.locator('[data-figure="officers-available"]')
    replied = page.locator('[data-figure="replied"]')
    expect(available).to_have_text("6", use_inner_text=True)
    expect(replied).to_have_text(re.compile(r"^1 "), use_inner_text=True)
    expect(page.locator("#map")).to_have_attribute("data-points", "3")
    # Markers are drawn on a canvas: open every tooltip through the map itself.
    page.evaluate(
        """() => document.getElementById("map").leafletMap.eachLayer(
            (layer) => layer.getTooltip && layer.getTooltip() && layer.openTooltip())"""
    )
    tooltips = page.locator(".leaflet-tooltip")
    expect(tooltips).to_have_count(3)
    assert "Suburb 2 <img src=x id=pwned> PD" in tooltips.all_inner_texts()
    expect(page.locator("#pwned")).to_have_count(0)
    page.evaluate("window.stillThisPage = true")

    answer(invitations[1], teams[1], 9, 10, 30)  # arrives while the official watches: 40 min

    expect(available).to_have_text("15")
    assert page.evaluate("window.stillThisPage") is True  # updated in place, not reloaded
    expect(replied).to_have_text(re.compile(r"^2 "), use_inner_text=True)
    expect(page.locator("#replies")).to_contain_text("Suburb 1 PD", use_inner_text=True)
    # The map fetched only the agency that changed, and still shows all three.
    expect(page.locator("#map")).to_have_attribute("data-last-fetched", "1")
    expect(page.locator("#map")).to_have_attribute("data-points", "3")
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

    # The window control updates the figures in place and keeps the choice in the address.
    page.get_by_label("Count officers who can be at").select_option(label="within 1 h")
    expect(available).to_have_text("9")
    expect(page).to_have_url(re.compile(r"within=60"))
    assert page.evaluate("window.stillThisPage") is True
    expect(available.locator("..")).to_contain_text("within 1 h", use_inner_text=True)

    page.set_viewport_size({"width": 375, "height": 800})
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=True)


def test_overview_leads_to_the_poll_dashboard(live_server, browser):
    poll = PollFactory(title="Open poll for Chicago", state=Poll.State.OPEN, sent_at=timezone.now())
    open_invitation(poll=poll)
    official = UserFactory(role=User.Role.OFFICIAL, email="official2@readiness.example")
    page = new_page(browser, viewport={"width": 1100, "height": 900})
    sign_in(page, live_server, official.email, next_url="/")
    page.wait_for_url("**/dashboard/")
    expect(page.locator("table").first).to_contain_text("0 of 1", use_inner_text=True)
    page.get_by_role("link", name="Open poll for Chicago").click()
    page.wait_for_url(f"**/polls/{poll.pk}/dashboard/")
    expect(page.get_by_role("heading", name=re.compile("Open poll for Chicago"))).to_be_visible()


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_one_unbroken_word_never_widens_the_dashboard(live_server, browser, artifacts, width):
    """A 2,000-character word in a decline reason (and in an agency's name) wraps: the page is
    exactly as wide as the screen, on a phone, a laptop and an operations-centre wall."""
    poll = PollFactory(title="Critical situations in Chicago", state=Poll.State.OPEN,
                       sent_at=timezone.now() - timezone.timedelta(hours=1))  # fmt: skip
    word = "x" * 2000
    invitation, _ = open_invitation(poll=poll, agency=AgencyFactory(name="Long" + "n" * 190))
    services_reply = {"decision": "unavailable", "decline_reason": word}
    from surveys import replies

    replies.reply_submit(
        poll=poll, agency=invitation.agency, answer=services_reply, lines=[], base_version=0,
        invitation=invitation, confirm=False,
    )  # fmt: skip
    official = UserFactory(role=User.Role.OFFICIAL, email=f"wide{width}@readiness.example")
    page = new_page(browser, viewport={"width": width, "height": 900})
    sign_in(page, live_server, official.email, next_url=f"/polls/{poll.pk}/dashboard/")
    page.wait_for_url(f"**/polls/{poll.pk}/dashboard/")
    page.locator("#declines-fold").evaluate("d => { d.open = true; }")  # folded on a phone
    expect(page.locator("#declines")).to_contain_text("xxxxxxxxxx", use_inner_text=True)
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    page.screenshot(path=str(artifacts / f"dashboard-long-word-{width}.png"), full_page=True)
    assert widths[0] <= widths[1], widths


def test_the_print_brief_is_dated_and_says_nothing_of_live_updates(live_server, browser, artifacts):
    poll = PollFactory(title="Critical situations in Chicago", state=Poll.State.OPEN,
                       sent_at=timezone.now() - timezone.timedelta(hours=1))  # fmt: skip
    open_invitation(poll=poll)
    official = UserFactory(role=User.Role.OFFICIAL, email="printer@readiness.example")
    page = new_page(browser, viewport={"width": 1366, "height": 900})
    sign_in(page, live_server, official.email, next_url=f"/polls/{poll.pk}/dashboard/")
    page.wait_for_url(f"**/polls/{poll.pk}/dashboard/")
    expect(page.locator(".print-header")).to_be_hidden()  # on screen: no print header
    page.emulate_media(media="print")
    expect(page.locator(".print-header")).to_be_visible()
    expect(page.locator(".print-header")).to_contain_text("printed", use_inner_text=True)
    expect(page.locator(".updated")).not_to_contain_text(
        "update by themselves", use_inner_text=True
    )
    page.pdf(path=str(artifacts / "print-brief.pdf"), format="Letter")
    assert (artifacts / "print-brief.pdf").stat().st_size > 10_000
