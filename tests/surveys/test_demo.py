"""load_demo: idempotent registry, working demo logins, synthetic notes, refused in production."""

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from agencies import demo
from agencies.models import Agency, Contact, SpecialTeam, TeamMembership
from readiness.models import User
from surveys.management.commands.load_demo import DEMO_TOTP_SECRET
from surveys.models import Invitation, Poll, Reply
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

DEMO_EMAILS = {
    "coordinator@readiness.example",
    "commander@readiness.example",
    "official@readiness.example",
}


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Agency, SpecialTeam, TeamMembership, Contact, User, Poll, Reply, Invitation)
    }


def test_loading_twice_changes_nothing():
    load_demo()
    first = counts()

    second_output = load_demo()

    assert counts() == first
    assert first["Agency"] == 276
    assert first["SpecialTeam"] > 0
    assert first["TeamMembership"] > 0
    assert first["Contact"] > 0
    assert set(User.objects.values_list("email", flat=True)) == DEMO_EMAILS
    assert "agencies: 0 created, 0 updated, 276 unchanged" in second_output
    assert "teams: 0 created, 0 updated" in second_output
    assert "contacts: 0 created, 0 updated" in second_output
    assert first["Poll"] == 1 and "Demo poll" not in second_output


def test_the_demo_poll_has_answers_and_leaves_the_demo_commander_to_answer(client):
    output = load_demo()
    asked, answered = map(int, re.search(r"(\d+) agencies asked, (\d+) answered", output).groups())
    poll = Poll.objects.get()
    assert poll.state == Poll.State.OPEN and asked > 20 and answered > 10
    assert Reply.objects.filter(poll=poll).count() == answered
    assert {r.decision for r in Reply.objects.all()} == set(Reply.Decision.values)
    commander = User.objects.get(email="commander@readiness.example")
    assert not Reply.objects.filter(agency=commander.agency).exists()
    client.force_login(commander)
    page = client.get(reverse("surveys:my-agency"))
    assert poll.title in page.text and "Not answered" in page.text


def test_demo_users_log_in_with_the_printed_password(client):
    output = load_demo()
    password = re.search(r"password for all: (\S+)\)", output).group(1)

    for email in sorted(DEMO_EMAILS):
        response = sign_in(client, email, password, totp_secret=DEMO_TOTP_SECRET)
        assert response.status_code == 302, email
        assert client.session["_auth_user_id"] == str(User.objects.get(email=email).pk)
        client.logout()

    commander = User.objects.get(email="commander@readiness.example")
    assert commander.role == User.Role.COMMANDER
    assert commander.agency.name == "Aurora Police Department"
    assert Contact.objects.get(agency=commander.agency, role=Contact.Role.PRIMARY).user == commander
    assert "commander@readiness.example for Aurora Police Department" in output


def test_every_demo_team_is_marked_synthetic():
    load_demo()

    assert SpecialTeam.objects.exists()
    assert not SpecialTeam.objects.exclude(notes=demo.SYNTHETIC).exists()
    assert "Synthetic" in demo.SYNTHETIC


def test_refused_in_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="production"):
        call_command("load_demo", stdout=io.StringIO())

    assert not Agency.objects.exists()
    assert not User.objects.exists()
