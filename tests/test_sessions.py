"""readiness.sessions: Django's database sessions, read by a compiled query: a live session
signs its person in, an expired or unknown one does not (and is forgotten), and the read is
one statement, prepared once per connection on PostgreSQL."""

import datetime

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from readiness.models import User

from .factories import UserFactory

pytestmark = pytest.mark.django_db


def signed_in(client) -> bool:
    response = client.get(reverse("dashboard"))
    return response.status_code == 200


def test_a_live_session_signs_in_and_an_expired_or_unknown_one_does_not(client):
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    assert signed_in(client)
    key = client.cookies["sessionid"].value
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert not signed_in(client)
    client.cookies["sessionid"] = "x" * 32  # a key nobody was given
    assert not signed_in(client)


def test_a_session_key_with_a_nul_is_no_session_not_an_error(client):
    client.raise_request_exception = False
    response = client.get(reverse("dashboard"), HTTP_COOKIE="sessionid=abcdefgh\x00ijklmnop")
    assert response.status_code == 302  # to sign in (Django's own store: 500 on PostgreSQL)


def test_the_session_is_read_by_one_statement(client):
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    key = client.cookies["sessionid"].value
    from readiness.sessions import SessionStore

    with CaptureQueriesContext(connection) as queries:
        store = SessionStore(key)
        assert store.load()["_auth_user_id"]
    assert len(queries) == 1
    if connection.vendor == "postgresql":
        assert queries[0]["sql"].startswith("EXECUTE readiness_lookup_")
    assert SessionStore("y" * 32).load() == {}
