"""A commander keeps their own agency current: teams, contacts, staffing, the yearly confirmation
and its reminder. Every change is audited and shown to coordinators."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from agencies import tasks
from agencies.models import Agency, Contact, SpecialTeam
from readiness.models import AuditEvent
from tests.conftest import FIXED_NOW
from tests.factories import ContactFactory, SpecialTeamFactory, TeamTypeFactory


def team_data(team_type, **overrides) -> dict:
    return {
        "name": "Tactical Response Team",
        "team_type": team_type.pk,
        "level": 2,
        "members": 18,
        "commander_name": "Lt. Dana Ruiz",
        "commander_phone": "+1 312 555 0100",
        "notes": "",
        "active": "on",
        **overrides,
    }


def contact_data(**overrides) -> dict:
    return {
        "name": "Sam Patel",
        "title": "Deputy Chief",
        "email": "sam.patel@agency.example",
        "phone": "+1 312 555 0111",
        "channels": "email",
        "active": "on",
        **overrides,
    }


@pytest.fixture
def swat(db):
    return TeamTypeFactory(code="swat-upkeep", name="SWAT (upkeep)")


def test_a_commander_edits_a_team_of_their_agency_and_it_is_audited(client, commander, swat):
    team = SpecialTeamFactory(agency=commander.agency, team_type=swat, members=12, level=3)
    client.force_login(commander)
    url = reverse("agencies:team-edit", args=[commander.agency.pk, team.pk])
    response = client.post(url, team_data(swat, name=team.name, members=20, level=2))
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.members, team.level, team.commander_name) == (20, 2, "Lt. Dana Ruiz")
    event = AuditEvent.objects.get(action="team.update", object_id=str(team.pk))
    assert event.actor == commander
    assert event.changes["members"] == [12, 20]
    assert event.changes["level"] == [3, 2]
    assert event.changes["agency"] == commander.agency.code
    # Saving the same values again changes nothing and writes no second event.
    client.post(url, team_data(swat, name=team.name, members=20, level=2))
    assert AuditEvent.objects.filter(action="team.update").count() == 1


def test_a_commander_adds_a_team_with_a_generated_key(client, commander, swat):
    client.force_login(commander)
    response = client.post(
        reverse("agencies:team-create", args=[commander.agency.pk]), team_data(swat)
    )
    assert response.status_code == 302
    team = SpecialTeam.objects.get(agency=commander.agency, name="Tactical Response Team")
    assert team.code.startswith(commander.agency.code)
    assert AuditEvent.objects.filter(action="team.create", object_id=str(team.pk)).exists()


def test_team_form_errors_are_one_per_field_and_nothing_is_saved(client, commander, swat):
    SpecialTeamFactory(agency=commander.agency, team_type=swat, name="Existing Team")
    client.force_login(commander)
    response = client.post(
        reverse("agencies:team-create", args=[commander.agency.pk]),
        team_data(swat, name="existing team", members=0),
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert "already has a team named" in form.errors["name"][0]
    assert len(form.errors["members"]) == 1
    assert b"Nothing was saved" in response.content
    assert SpecialTeam.objects.filter(agency=commander.agency).count() == 1


def test_a_commander_cannot_edit_another_agency(client, commander, other_agency, swat):
    team = SpecialTeamFactory(agency=other_agency, team_type=swat, members=12)
    client.force_login(commander)
    for url in (
        reverse("agencies:team-edit", args=[other_agency.pk, team.pk]),
        reverse("agencies:contact-create", args=[other_agency.pk]),
        reverse("agencies:agency-verify", args=[other_agency.pk]),
        # Another agency's team through the commander's own agency's address.
        reverse("agencies:team-edit", args=[commander.agency.pk, team.pk]),
    ):
        assert client.post(url, team_data(swat, members=99)).status_code == 404, url
    team.refresh_from_db()
    assert team.members == 12
    assert not AuditEvent.objects.filter(action__startswith="team.").exists()


def test_an_official_may_read_but_not_edit(client, official, agency):
    client.force_login(official)
    assert client.get(agency.get_absolute_url()).status_code == 200
    assert client.get(reverse("agencies:agency-edit", args=[agency.pk])).status_code == 403
    assert client.post(reverse("agencies:agency-verify", args=[agency.pk])).status_code == 403
    agency.refresh_from_db()
    assert agency.verified_at is None


def test_making_a_contact_primary_demotes_the_old_primary(client, commander):
    old = ContactFactory(agency=commander.agency, role=Contact.Role.PRIMARY)
    new = ContactFactory(agency=commander.agency, role=Contact.Role.ALTERNATE)
    client.force_login(commander)
    response = client.post(
        reverse("agencies:contact-edit", args=[commander.agency.pk, new.pk]),
        contact_data(name=new.name, email=new.email, primary="on"),
    )
    assert response.status_code == 302
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.role, new.role) == (Contact.Role.ALTERNATE, Contact.Role.PRIMARY)
    assert AuditEvent.objects.get(action="contact.update", object_id=str(old.pk)).changes[
        "role"
    ] == ["primary", "alternate"]


def test_the_primary_contact_cannot_be_retired_or_demoted(client, commander):
    primary = ContactFactory(agency=commander.agency, role=Contact.Role.PRIMARY)
    client.force_login(commander)
    url = reverse("agencies:contact-edit", args=[commander.agency.pk, primary.pk])
    demoted = client.post(url, contact_data(name=primary.name, email=primary.email))
    assert demoted.status_code == 422
    assert "make another contact primary" in demoted.content.decode()
    retired = client.post(
        url, contact_data(name=primary.name, email=primary.email, primary="on", active="")
    )
    assert retired.status_code == 422
    primary.refresh_from_db()
    assert (primary.role, primary.active) == (Contact.Role.PRIMARY, True)


def test_a_new_contact_with_an_email_already_on_file_is_refused(client, commander):
    ContactFactory(agency=commander.agency, email="Sam.Patel@agency.example")
    client.force_login(commander)
    response = client.post(
        reverse("agencies:contact-create", args=[commander.agency.pk]), contact_data()
    )
    assert response.status_code == 422
    assert "already has a contact with this email" in response.content.decode()
    assert Contact.objects.filter(agency=commander.agency).count() == 1


def test_staffing_figures_are_checked_against_each_other(client, commander):
    client.force_login(commander)
    url = reverse("agencies:agency-edit", args=[commander.agency.pk])
    data = {"sworn_officers": 40, "min_home_staffing": 55, "address": "", "city": "", "county": ""}
    assert client.post(url, data).status_code == 422
    data["min_home_staffing"] = 10
    assert client.post(url, data).status_code == 302
    agency = Agency.objects.get(pk=commander.agency.pk)
    assert (agency.sworn_officers, agency.min_home_staffing) == (40, 10)
    assert AuditEvent.objects.filter(action="agency.update", object_id=str(agency.pk)).exists()


def test_confirming_the_record_is_shown_to_coordinators_with_what_changed(
    client, clock, commander, coordinator, swat
):
    team = SpecialTeamFactory(agency=commander.agency, team_type=swat, members=12)
    client.force_login(commander)
    page = client.get(commander.agency.get_absolute_url()).content.decode()
    assert "never been verified" in page
    client.post(
        reverse("agencies:team-edit", args=[commander.agency.pk, team.pk]),
        team_data(swat, name=team.name, members=14),
    )
    assert (
        client.post(reverse("agencies:agency-verify", args=[commander.agency.pk])).status_code
        == 302
    )
    agency = Agency.objects.get(pk=commander.agency.pk)
    assert agency.verified_at == FIXED_NOW
    assert agency.verified_by == commander
    client.force_login(coordinator)
    page = client.get(agency.get_absolute_url()).content.decode()
    assert "Last verified on" in page
    assert FIXED_NOW.strftime("%Y") in page
    assert "Recent changes" in page
    assert "members" in page and "12 → 14" in page
    listing = client.get(reverse("agencies:agency-list")).content.decode()
    assert "Last verified" in listing


def test_the_yearly_reminder_goes_once_to_agencies_due(settings, clock, commander):
    settings.AGENCY_VERIFY_EVERY_DAYS = 365
    settings.AGENCY_VERIFY_REMIND_DAYS = 30
    agency = commander.agency
    primary = ContactFactory(agency=agency, role=Contact.Role.PRIMARY)
    fresh = ContactFactory(role=Contact.Role.PRIMARY).agency
    Agency.objects.filter(pk=fresh.pk).update(verified_at=FIXED_NOW - timedelta(days=100))
    Agency.objects.filter(pk=agency.pk).update(verified_at=FIXED_NOW - timedelta(days=366))

    assert tasks.remind_verification.delay().get() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == sorted([commander.email, primary.email])
    assert agency.name in message.subject
    assert reverse("agencies:agency-detail", args=[agency.pk]) in message.body
    # Not again the next hour, nor the next week; again after the reminder interval.
    clock.move_to(FIXED_NOW + timedelta(hours=1))
    assert tasks.remind_verification.delay().get() == 0
    clock.move_to(FIXED_NOW + timedelta(days=31))
    assert tasks.remind_verification.delay().get() == 1
    assert len(mail.outbox) == 2


def test_a_failed_reminder_is_tried_again_next_run(settings, clock, commander, monkeypatch):
    ContactFactory(agency=commander.agency, role=Contact.Role.PRIMARY)
    from agencies import upkeep

    def refuse(agency, to):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(upkeep, "_send_reminder", refuse)
    assert tasks.remind_verification.delay().get() == 0
    monkeypatch.undo()
    assert tasks.remind_verification.delay().get() == 1
    assert len(mail.outbox) == 1


# Through the API: the same forms, services and audit.


def test_api_team_patch_changes_only_what_is_sent_and_is_audited(client, commander, swat):
    team = SpecialTeamFactory(agency=commander.agency, team_type=swat, members=12, level=3)
    client.force_login(commander)
    response = client.patch(
        reverse("api:team-detail", args=[team.pk]), {"members": 16}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["members"] == 16
    team.refresh_from_db()
    assert (team.members, team.level, team.team_type) == (16, 3, swat)
    event = AuditEvent.objects.get(action="team.update")
    assert event.changes["members"] == [12, 16] and event.actor == commander


def test_api_errors_are_the_forms_messages_per_field(client, commander, swat):
    SpecialTeamFactory(agency=commander.agency, team_type=swat, name="Existing Team")
    client.force_login(commander)
    response = client.post(
        reverse("api:team-list"),
        {"agency": commander.agency.pk, "name": "EXISTING team", "team_type": swat.pk,
         "members": 0, "colour": "red"},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["colour"]  # unknown fields are refused before anything else
    response = client.post(
        reverse("api:team-list"),
        {"agency": commander.agency.pk, "name": "EXISTING team", "team_type": swat.pk,
         "members": 0},
        content_type="application/json",
    )  # fmt: skip
    errors = response.json()["errors"]
    assert "already has a team named" in errors["name"][0]
    assert len(errors["members"]) == 1
    assert SpecialTeam.objects.filter(agency=commander.agency).count() == 1


def test_api_contact_made_primary_demotes_the_old_one_and_refuses_demoting(client, commander):
    old = ContactFactory(agency=commander.agency, role=Contact.Role.PRIMARY)
    client.force_login(commander)
    created = client.post(
        reverse("api:contact-list"),
        {"agency": commander.agency.pk, "name": "Robin Lee", "email": "robin@a.example",
         "phone": "+13125550199", "primary": True},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    assert created.json()["role"] == "primary"
    old.refresh_from_db()
    assert old.role == Contact.Role.ALTERNATE
    refused = client.patch(
        reverse("api:contact-detail", args=[created.json()["id"]]),
        {"primary": False},
        content_type="application/json",
    )
    assert refused.status_code == 409
    assert "make another contact primary" in refused.json()["detail"]


def test_api_verify_and_facts(client, clock, commander):
    client.force_login(commander)
    agency = commander.agency
    response = client.post(reverse("api:agency-verify", args=[agency.pk]))
    assert response.status_code == 200
    agency.refresh_from_db()
    assert agency.verified_at == FIXED_NOW
    assert AuditEvent.objects.filter(action="agency.verify", actor=commander).exists()
    response = client.patch(
        reverse("api:agency-detail", args=[agency.pk]),
        {"min_home_staffing": agency.sworn_officers + 1},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "min_home_staffing" in response.json()["errors"]
