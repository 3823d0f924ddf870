"""A coordinator watches a poll asked in waves, and pauses then resumes it, at 390, 1366 and
1920 px."""

import pytest
from playwright.sync_api import expect

from surveys import compose
from tests.e2e.conftest import new_page
from tests.e2e.test_registry_browser import fits_the_screen, sign_in
from tests.factories import AgencyFactory, ContactFactory, SpecialTeamFactory, TeamTypeFactory
from tests.surveys.factories import PollFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_a_coordinator_pauses_and_resumes_the_waves(live_server, browser, artifacts, coordinator,
                                                     width):  # fmt: skip
    swat = TeamTypeFactory(code=f"swat-waves-{width}")
    agencies = []
    for k, lat in enumerate((41.95, 42.3, 43.2)):  # about 7, 39 and 125 minutes away
        agency = AgencyFactory(name=f"Ring PD {k}", latitude=lat, longitude=-87.63)
        SpecialTeamFactory(agency=agency, team_type=swat, members=20)
        ContactFactory(agency=agency, role="primary")
        agencies.append(agency)
    poll = PollFactory(target_agencies=agencies, officers_needed=30, wave_rings=[45, 90],
                       title="Lakefront in waves", destination_latitude=41.88,
                       destination_longitude=-87.63)  # fmt: skip
    poll.target_team_types.set([swat])
    compose.poll_send(poll=poll)
    page = new_page(browser, viewport={"width": width, "height": 900}, is_mobile=width < 600)
    sign_in(page, live_server, coordinator.email, next_url=f"/polls/{poll.pk}/")
    waves = page.locator("section.waves")
    expect(waves).to_contain_text("within 45 min of travel")
    expect(waves).to_contain_text("the rest of the targeted agencies")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Pause the waves").click()
    expect(page.get_by_text("Waves paused")).to_be_visible()
    expect(page.locator("#waves-title")).to_contain_text("paused")
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"waves-{width}.png"), full_page=True)
    page.get_by_role("button", name="Resume the waves").click()
    expect(page.get_by_text("Waves resumed.")).to_be_visible()
    page.context.close()
