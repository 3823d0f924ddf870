"""Every page fits its screen at a phone's, a laptop's and an operations-centre wall's width: no
table wider than its card, no page wider than the window, with long audit changes too."""

import pytest
from playwright.sync_api import expect

from readiness.models import AuditEvent, User
from tests.e2e.conftest import new_page
from tests.e2e.test_registry_browser import sign_in
from tests.factories import AgencyFactory, ContactFactory, RegionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

OVERFLOWING = """() => [...document.querySelectorAll('.card, section, main, table')]
    .filter(el => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'auto')
    .map(el => `${el.tagName}.${el.className}#${el.id} ${el.scrollWidth}>${el.clientWidth}`)"""


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_wide_tables_stay_inside_their_cards(live_server, browser, artifacts, width):
    region = RegionFactory(name="Region 1 - Northeast")
    for i in range(3):
        agency = AgencyFactory(name=f"Northeast Metropolitan Enforcement Group {i}", region=region)
        ContactFactory(agency=agency, role="primary", email=f"commander.of.group{i}@nemeg.example")
    AuditEvent.objects.create(
        action="agency.update", object_type="agency", object_id="1", object_repr="Agency 1",
        changes={"address": ["1 Very Long Street Name Without Any Break " * 8, "2 Short St"],
                 "notes": ["-" * 400, ""]},
    )  # fmt: skip
    coordinator = UserFactory(role=User.Role.COORDINATOR, email=f"c{width}@readiness.example")
    page = new_page(browser, viewport={"width": width, "height": 900})
    sign_in(page, live_server, coordinator.email, next_url="/dashboard/")
    for path, name in [("/dashboard/", "overview"), ("/audit/", "audit"),
                       ("/polls/new/", "compose")]:  # fmt: skip
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("h1").first).to_be_visible()
        if name == "compose":
            page.get_by_label("Title").fill("Layout check")
            page.get_by_label("Destination", exact=True).select_option(label="Chicago (City Hall)")
            page.get_by_label(region.name).check()
            expect(page.locator("#preview")).to_contain_text("3 agencies", use_inner_text=True)
        page.screenshot(path=str(artifacts / f"layout-{name}-{width}.png"), full_page=True)
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], (name, widths)
        assert page.evaluate(OVERFLOWING) == [], name
    page.context.close()
