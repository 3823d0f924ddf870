"""readiness.postgresql: a persistent connection's health check asks the server nothing while
its socket is quiet, and still finds a connection the server dropped, which the next request
replaces before its own statements."""

import time

import pytest
from django.db import connections

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own():
    """A connection of the test's own, persistent and health-checked as in production."""
    default = connections["default"]
    settings = {**default.settings_dict, "CONN_HEALTH_CHECKS": True, "CONN_MAX_AGE": None}
    wrapper = type(default)(settings, alias="default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def backend(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def last_statement(pid: int) -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


def test_a_quiet_connection_just_used_is_usable_without_a_round_trip(postgres, own):
    pid = backend(own)
    with own.cursor() as cursor:
        cursor.execute("SELECT 'the last statement'")

    assert own.is_usable()
    assert last_statement(pid) == "SELECT 'the last statement'"  # no SELECT 1 was sent


def test_a_connection_idle_for_a_while_is_asked_as_django_asks(postgres, own, monkeypatch):
    from readiness.postgresql import base

    pid = backend(own)
    monkeypatch.setattr(own, "used_at", own.used_at - base.IDLE_SECONDS - 1)
    assert own.is_usable()
    assert last_statement(pid) == "SELECT 1"


def test_a_connection_the_server_dropped_is_replaced_before_the_next_statement(postgres, own):
    pid = backend(own)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while own.is_usable():  # the server's goodbye reaches the socket
        assert time.monotonic() < deadline, "a dropped connection still looks usable"
        time.sleep(0.01)

    own.close_if_unusable_or_obsolete()  # what Django does as a request ends: kept (no age)
    assert own.connection is not None

    # The next request's first statement checks first.

    assert backend(own) != pid  # a new connection, and no error
