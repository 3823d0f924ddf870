"""One rule for contact details (names, emails, phones of the people asked), on every page and
endpoint: coordinators see them, a commander sees their own agency's, officials see that a
contact is on file and was asked, never who."""

import pytest
from django.urls import reverse

from agencies.models import Contact
from readiness.models import User
from surveys import replies
from tests.factories import ContactFactory, SpecialTeamFactory, UserFactory
from tests.surveys.factories import open_invitation

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "dana.secret@aurora.example", "+1 630 555 0199"


@pytest.fixture
def asked():
    """An open poll; one agency asked (and answered), one asked and silent."""
    invitation, _ = open_invitation()
    Contact.objects.filter(pk=invitation.contact_id).update(
        email=EMAIL, phone=PHONE, name="Dana Secret"
    )
    invitation.__class__.objects.filter(pk=invitation.pk).update(email=EMAIL)
    invitation.refresh_from_db()
    silent, _ = open_invitation(poll=invitation.poll)
    ContactFactory(agency=silent.agency, email="quiet.chief@elgin.example", phone=PHONE)
    silent.__class__.objects.filter(pk=silent.pk).update(
        email="quiet.chief@elgin.example",
        state="failed",
        failure_reason="550 5.1.1 <quiet.chief@elgin.example>: no such user",
    )
    team = SpecialTeamFactory(agency=invitation.agency, members=10)
    replies.reply_submit(
        poll=invitation.poll, agency=invitation.agency,
        answer={"decision": "available", "authorised_by_name": "Dana Secret"},
        lines=[{"team": team, "estimate": 30, "officers": 4, "depart_minutes": 10,
                "travel_minutes": 30}],
        base_version=0, invitation=invitation, confirm=False,
    )  # fmt: skip
    return invitation


def pages(invitation) -> dict[str, str]:
    poll = invitation.poll
    return {
        "agency": invitation.agency.get_absolute_url(),
        "poll": reverse("surveys:poll-detail", args=[poll.pk]),
        "dashboard": reverse("poll-dashboard", args=[poll.pk]) + "?within=all",
        "history": reverse("surveys:reply-history", args=[poll.pk, invitation.agency_id]),
    }


def test_officials_see_that_contacts_exist_not_who(client, asked):
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    for name, url in pages(asked).items():
        response = client.get(url)
        assert response.status_code == 200, name
        for secret in (EMAIL, PHONE, "quiet.chief@elgin.example"):
            assert secret not in response.text, (name, secret)
    agency_page = client.get(pages(asked)["agency"]).text
    assert "1 contact on file" in agency_page and "Dana Secret" not in agency_page
    api = client.get(reverse("api:invitation-list"), {"poll": asked.poll_id}).json()["results"]
    assert len(api) == 2
    assert {(r["email"], r["contact"], r["failure_reason"]) for r in api} == {(None, None, None)}
    assert client.get(reverse("api:contact-list")).status_code == 403


def test_coordinators_see_contact_details(client, asked):
    client.force_login(UserFactory(role=User.Role.COORDINATOR))
    urls = pages(asked)
    assert EMAIL in client.get(urls["agency"]).text and PHONE in client.get(urls["agency"]).text
    assert EMAIL in client.get(urls["poll"]).text
    assert "quiet.chief@elgin.example" in client.get(urls["dashboard"]).text
    assert EMAIL in client.get(urls["history"]).text
    api = client.get(reverse("api:invitation-list"), {"poll": asked.poll_id}).json()["results"]
    assert {r["email"] for r in api} == {EMAIL, "quiet.chief@elgin.example"}


def test_a_commander_sees_their_own_agencys_contacts(client, asked):
    client.force_login(UserFactory(role=User.Role.COMMANDER, agency=asked.agency))
    assert EMAIL in client.get(asked.agency.get_absolute_url()).text
    [own] = client.get(reverse("api:invitation-list")).json()["results"]
    assert own["email"] == EMAIL and own["contact"]["name"] == "Dana Secret"
