import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import require_service
from tests.surveys.conftest import smtp_sink  # noqa: F401 (a real SMTP server, shared)

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The one deadline for every browser wait: actions, navigations, page.request calls and
# expect(). Generous because CI is a loaded 2-core box (PostgreSQL, Redis, a Celery worker and
# gunicorn run beside the suite); a wait returns as soon as its condition holds, so a generous
# deadline costs nothing on a fast run and turns a slow one into a slower pass, not a failure.
WAIT_MS = int(os.environ.get("E2E_WAIT_MS", "30000"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def expect_waits_the_deadline():
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=None)  # back to Playwright's own default


@pytest.fixture(autouse=True)
def allow_orm_beside_playwright(monkeypatch):
    # Playwright's sync API keeps an event loop in the test thread; the tests touch the database
    # only between browser calls, never concurrently with them. Scoped to these tests so that
    # no subprocess elsewhere (e.g. check --deploy) inherits it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# One browser per test: Playwright's event loop must stop before pytest-django flushes the
# database after the test (and before other tests run in this thread), or Django would take
# that work for async code.
@pytest.fixture
def browser():
    require_service(
        "Chromium", Path(CHROMIUM).exists() or bool(shutil.which("chromium")),
        "apt-get install chromium",
    )  # fmt: skip
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # Queries made while Playwright's loop runs open their own connection (Django keys
        # connections by context there); close it here, or the test database cannot be dropped.
        connections.close_all()


def new_page(browser, **context_kwargs):
    """A page in a context of its own (made with context_kwargs), every wait of both (actions,
    navigations, page.request) bounded by WAIT_MS. Close it with page.context.close()."""
    context = browser.new_context(**context_kwargs)
    page = context.new_page()
    for waiter in (context, page):
        waiter.set_default_timeout(WAIT_MS)
        waiter.set_default_navigation_timeout(WAIT_MS)
    return page


@pytest.fixture
def phone(browser):
    page = new_page(browser, viewport={"width": 375, "height": 812}, is_mobile=True)
    yield page
    page.context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
