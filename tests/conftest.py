import os

import pytest
from django.conf import settings

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
