import datetime
import os

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created
from django.urls import reverse

from readiness.models import User

from .factories import AgencyFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, available: bool, why: str) -> None:
    """Skip a test whose service is absent, except in CI, where that is a failure."""
    if available:
        return
    message = f"{name} is not available: {why}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


def totp_code(secret: str) -> str:
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    counters = list(yield_hotp_counters_from_time())  # the middle one is now
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2]))


def sign_in(client, email: str, password: str, *, totp_secret: str | None = None):
    """Sign in through the real form, and the two-factor step when the account has one."""
    response = client.post(reverse("account_login"), {"login": email, "password": password})
    if totp_secret and response.get("Location") == reverse("mfa_authenticate"):
        response = client.post(reverse("mfa_authenticate"), {"code": totp_code(totp_secret)})
    return response


# A weekday afternoon in Chicago, in UTC: where a test stops the clock.
FIXED_NOW = datetime.datetime(2026, 3, 12, 20, 0, tzinfo=datetime.UTC)


@pytest.fixture
def clock(time_machine):
    """The wall clock stopped at FIXED_NOW: a test that compares two answers stamped with the
    time moves it on purpose (clock.shift(seconds) or clock.move_to(moment)), never by chance
    when a minute turns between two requests."""
    time_machine.move_to(FIXED_NOW, tick=False)
    return time_machine


def _allow_test_flush(sender, connection, **kwargs):
    """The audit table refuses TRUNCATE (readiness migration 0005) unless the session says so:
    the test runner's flush between transactional tests empties it on purpose."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET readiness.audit_truncate = 'allow'")


connection_created.connect(_allow_test_flush)


@pytest.fixture(autouse=True)
def _test_speed_and_timing(settings):
    # The real hasher is slow by design; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # A code computed just before a 30-second step turns must still pass (production: 0).
    settings.MFA_TOTP_TOLERANCE = 1


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run in the test's process, also when REDIS_URL is set; the tests with a real
    worker turn this off for themselves."""
    from readiness.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _rate_limit_window_held(monkeypatch):
    """Rate limits count in fixed windows of the wall clock: held still, so that a test's
    requests never straddle two windows (and one run in thousands fails)."""
    from readiness import ratelimit

    monkeypatch.setattr(ratelimit, "_now", lambda: 1_800_000_000.0)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits live in the cache: each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_url():
    require_service("Redis", bool(settings.REDIS_URL), "set REDIS_URL=redis://...")
    return settings.REDIS_URL


@pytest.fixture
def postgres():
    require_service(
        "PostgreSQL",
        settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        "set DATABASE_URL=postgres://...",
    )


@pytest.fixture
def agency(db):
    return AgencyFactory()


@pytest.fixture
def other_agency(db):
    return AgencyFactory()


@pytest.fixture
def coordinator(db):
    return UserFactory(role=User.Role.COORDINATOR, full_name="Casey Coordinator")


@pytest.fixture
def commander(agency):
    return UserFactory(role=User.Role.COMMANDER, agency=agency, full_name="Chris Commander")


@pytest.fixture
def other_commander(other_agency):
    return UserFactory(role=User.Role.COMMANDER, agency=other_agency)


@pytest.fixture
def official(db):
    return UserFactory(role=User.Role.OFFICIAL, full_name="Olivia Official")
