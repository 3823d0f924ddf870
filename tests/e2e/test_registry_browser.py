"""A coordinator on a phone signs in, filters the registry, opens an agency, imports a file."""

import pytest
from playwright.sync_api import expect

from agencies.models import Agency, Contact
from readiness.models import User
from tests.conftest import totp_code
from tests.factories import (
    TOTP_SECRET,
    AgencyFactory,
    ContactFactory,
    RegionFactory,
    SpecialTeamFactory,
    TeamMembershipFactory,
    TeamTypeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def sign_in(page, live_server, email: str, next_url: str = "/agencies/"):
    page.goto(f"{live_server.url}{next_url}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    # Coordinators have two-factor authentication: the second step asks for the code.
    page.wait_for_url("**/2fa/authenticate/**")
    expect(page.get_by_role("heading", name="Enter your two-factor code")).to_be_visible()
    page.get_by_label("Six-digit code").fill(totp_code(TOTP_SECRET))
    page.get_by_role("button", name="Verify and sign in").click()


def test_phone_registry_walkthrough(live_server, phone, artifacts):
    north = RegionFactory(name="Region 1 - Northeast")
    swat = TeamTypeFactory(code="swat")
    aurora = AgencyFactory(name="Aurora Police Department", region=north, city="Aurora")
    AgencyFactory(name="Joliet Police Department", region=north, city="Joliet")
    team = SpecialTeamFactory(agency=aurora, name="Aurora SRT", team_type=swat, members=24)
    TeamMembershipFactory(team=team, officers=4)
    ContactFactory(agency=aurora, name="Drew Ramirez", role=Contact.Role.PRIMARY)
    user = UserFactory(role=User.Role.COORDINATOR, email="coord@readiness.example")

    sign_in(phone, live_server, user.email)
    phone.wait_for_url("**/agencies/")
    count = phone.locator(".count")
    expect(count).to_contain_text("3 agencies", use_inner_text=True)  # with the member agency

    phone.get_by_label("Search").fill("aurora")
    phone.get_by_label("Has team").select_option(label=swat.name)
    phone.get_by_role("button", name="Filter").click()
    phone.wait_for_url("**q=aurora**")
    expect(count).to_contain_text("1 agency", use_inner_text=True)
    assert fits_the_screen(phone)
    phone.screenshot(path=str(artifacts / "registry-list-phone.png"), full_page=True)

    phone.get_by_role("link", name="Aurora Police Department").click()
    phone.wait_for_url(f"**/agencies/{aurora.pk}/")
    expect(phone.get_by_role("heading", name="Aurora Police Department")).to_be_visible()
    expect(phone.locator("#teams ~ table")).to_contain_text("Aurora SRT", use_inner_text=True)
    assert "Drew Ramirez" in phone.content()
    assert fits_the_screen(phone)
    phone.screenshot(path=str(artifacts / "agency-detail-phone.png"), full_page=True)


def test_phone_import_shows_line_errors_then_imports(live_server, phone, artifacts, tmp_path):
    RegionFactory(name="North")
    user = UserFactory(role=User.Role.COORDINATOR, email="coord@readiness.example")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "record,key,agency,name,kind,region,latitude,longitude\n"
        "agency,ok-pd,,OK Police Department,municipal,North,41.9,-88.1\n"
        "agency,bad-pd,,Bad Police Department,municipal,Atlantis,41.9,-88.1\n"
    )
    sign_in(phone, live_server, user.email, next_url="/agencies/import/")
    phone.wait_for_url("**/agencies/import/")
    phone.get_by_label("CSV file").set_input_files(str(bad))
    phone.get_by_role("button", name="Upload and import").click()
    summary = phone.locator(".error-summary")
    expect(summary).to_contain_text("Nothing was imported", use_inner_text=True)
    expect(summary).to_contain_text("unknown region 'Atlantis'", use_inner_text=True)
    assert fits_the_screen(phone)
    phone.screenshot(path=str(artifacts / "import-errors-phone.png"), full_page=True)
    assert not Agency.objects.exists()

    good = tmp_path / "good.csv"
    good.write_text(bad.read_text().replace("Atlantis", "North"))
    phone.get_by_label("CSV file").set_input_files(str(good))
    phone.get_by_role("button", name="Upload and import").click()
    expect(phone.locator(".notice")).to_contain_text("Agencies: 2 created", use_inner_text=True)
    assert Agency.objects.count() == 2


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_sign_in_with_two_factor_in_the_apps_own_pages(live_server, browser, artifacts, width):
    from tests.e2e.conftest import new_page

    user = UserFactory(role=User.Role.COORDINATOR, email=f"coord{width}@readiness.example")
    page = new_page(browser, viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/agencies/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/2fa/authenticate/**")
    expect(page.get_by_role("heading", name="Enter your two-factor code")).to_be_visible()
    expect(page.get_by_role("link", name="Readiness")).to_be_visible()  # the app's own bar
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"two-factor-{width}.png"), full_page=True)
    page.get_by_label("Six-digit code").fill("000000")
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.locator(".field-error")).to_be_visible()
    page.get_by_label("Six-digit code").fill(totp_code(TOTP_SECRET))
    page.get_by_role("button", name="Verify and sign in").click()
    page.wait_for_url("**/agencies/")
    page.context.close()


@pytest.mark.parametrize("width", [390, 1366, 1920])
def test_a_commander_keeps_their_agency_current(live_server, browser, artifacts, width):
    from tests.e2e.conftest import new_page

    swat = TeamTypeFactory(code=f"swat-{width}")
    agency = AgencyFactory(name="Elgin Police Department")
    team = SpecialTeamFactory(agency=agency, name="Elgin SRT", team_type=swat, members=12)
    old = ContactFactory(agency=agency, name="Drew Ramirez", role=Contact.Role.PRIMARY)
    user = UserFactory(role=User.Role.COMMANDER, agency=agency, email=f"cmd{width}@elgin.example")
    page = new_page(browser, viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}{agency.get_absolute_url()}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{agency.get_absolute_url()}")
    expect(page.locator(".verification")).to_contain_text("never been verified")

    page.get_by_role("link", name="Edit Elgin SRT").click()
    page.get_by_label("Officers on the team").fill("16")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**{agency.get_absolute_url()}")
    expect(page.locator(".messages")).to_contain_text("saved: members")

    page.get_by_role("link", name="Add a contact").click()
    page.get_by_label("Name").fill("Robin Lee")
    page.get_by_role("textbox", name="Email").fill("not an address")
    page.get_by_label("Primary contact").check()
    page.get_by_role("button", name="Save").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Email", use_inner_text=True)
    assert summary.evaluate("e => e.getBoundingClientRect().top < window.innerHeight")
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"contact-error-{width}.png"), full_page=True)
    page.get_by_role("textbox", name="Email").fill("robin.lee@elgin.example")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**{agency.get_absolute_url()}")

    page.get_by_role("button", name="Confirm the record is current").click()
    expect(page.locator(".verification")).to_contain_text("Last verified on")
    expect(page.locator("#changes ~ table")).to_contain_text("12 → 16", use_inner_text=True)
    assert fits_the_screen(page)
    page.screenshot(path=str(artifacts / f"agency-upkeep-{width}.png"), full_page=True)
    team.refresh_from_db()
    old.refresh_from_db()
    assert team.members == 16
    assert old.role == Contact.Role.ALTERNATE
    assert Contact.objects.get(email="robin.lee@elgin.example").role == Contact.Role.PRIMARY
    page.context.close()
