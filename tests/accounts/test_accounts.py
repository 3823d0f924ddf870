"""Accounts: sign-in by email, rate limits, required two-factor, password reset, no sign-up,
invitations, deactivation."""

import re

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY
from django.urls import reverse

from readiness.models import AuditEvent, User
from tests.conftest import sign_in, totp_code
from tests.factories import TOTP_SECRET, AgencyFactory, UserFactory

PASSWORD = "correct-horse-battery"
AGENCIES = reverse("agencies:agency-list")


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


# Sign-in -------------------------------------------------------------------------------------


def test_sign_in_by_email_in_any_case_with_two_factor(client, db):
    UserFactory(email="casey@readiness.example", role=User.Role.COORDINATOR)
    response = sign_in(client, "Casey@Readiness.Example", PASSWORD, totp_secret=TOTP_SECRET)
    assert response.status_code == 302
    assert client.get(AGENCIES).status_code == 200


def test_two_factor_step_refuses_a_wrong_code(client, db):
    UserFactory(email="casey@readiness.example", role=User.Role.COORDINATOR)
    response = client.post(
        reverse("account_login"), {"login": "casey@readiness.example", "password": PASSWORD}
    )
    assert response["Location"] == reverse("mfa_authenticate")
    step = client.get(reverse("mfa_authenticate")).text
    assert "Enter your two-factor code" in step and "Six-digit code" in step  # the app's page
    assert 'class="topbar"' in step and "Two-Factor Authentication" not in step
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200
    assert 'class="field-error"' in response.text and "Verify and sign in" in response.text
    assert client.get(AGENCIES).status_code == 302  # still not signed in


def test_wrong_password_is_refused_with_a_message(client, db):
    UserFactory(email="chris@readiness.example", role=User.Role.COMMANDER, agency=AgencyFactory())
    response = sign_in(client, "chris@readiness.example", "nope")
    assert response.status_code == 200
    assert "email address and/or password you specified are not correct" in response.text
    assert AuditEvent.objects.filter(
        action="auth.sign_in_failed", actor_email="chris@readiness.example"
    ).exists()


def test_deactivated_user_cannot_sign_in(client, db):
    UserFactory(email="gone@readiness.example", is_active=False)
    sign_in(client, "gone@readiness.example", PASSWORD, totp_secret=TOTP_SECRET)
    assert client.get(AGENCIES).status_code == 302


def test_failed_sign_ins_are_rate_limited(client, db):
    UserFactory(email="chris@readiness.example", role=User.Role.COMMANDER, agency=AgencyFactory())
    for _ in range(5):
        assert sign_in(client, "chris@readiness.example", "wrong").status_code == 200
    # Locked for this account now, even with the right password.
    response = sign_in(client, "chris@readiness.example", PASSWORD)
    assert response.status_code in (200, 429)
    assert "Too many failed login attempts" in response.text
    assert client.get(AGENCIES).status_code == 302
    # The refusal is in the audit trail, with the address tried (never a password).
    from readiness.models import AuditEvent

    refused = AuditEvent.objects.filter(action="auth.sign_in_rate_limited")
    assert list(refused.values_list("actor_email", flat=True)) == ["chris@readiness.example"]
    assert PASSWORD not in str(refused.get().changes)


def test_there_is_no_open_sign_up(client, db):
    response = client.post(
        reverse("account_signup"),
        {"email": "new@x.example", "password1": "Sup3r-secret!", "password2": "Sup3r-secret!"},
    )
    assert "Sign Up Closed" in response.text
    assert not User.objects.filter(email="new@x.example").exists()


def test_sign_out_needs_a_post(client, official):
    client.force_login(official)
    client.get(reverse("account_logout"))
    assert client.get(AGENCIES).status_code == 200
    client.post(reverse("account_logout"))
    assert client.get(AGENCIES).status_code == 302


# Two-factor required by role -------------------------------------------------------------------


@pytest.mark.parametrize("role", [User.Role.COORDINATOR, User.Role.OFFICIAL])
def test_roles_that_need_two_factor_are_led_to_set_it_up(client, db, role):
    user = UserFactory(role=role, mfa=False)
    sign_in(client, user.email, PASSWORD)
    response = client.get(AGENCIES)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    # allauth asks for the password again before changing two-factor settings.
    response = client.get(reverse("mfa_activate_totp"))
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    # Set it up: the page shows a secret; the code from it activates TOTP.
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    assert client.get(AGENCIES).status_code == 200


def test_commanders_need_no_two_factor_by_default(client, commander):
    client.force_login(commander)
    assert client.get(AGENCIES).status_code == 200


def test_the_required_roles_are_a_setting(client, settings, commander):
    settings.MFA_REQUIRED_ROLES = ["commander"]
    client.force_login(commander)
    assert client.get(AGENCIES)["Location"] == reverse("mfa_activate_totp")


# Passwords -------------------------------------------------------------------------------------


def test_password_reset_by_email(client, db, mailoutbox):
    UserFactory(email="chris@readiness.example", role=User.Role.COMMANDER, agency=AgencyFactory())
    client.post(reverse("account_reset_password"), {"email": "chris@readiness.example"})
    assert len(mailoutbox) == 1
    link = link_in(mailoutbox[0])
    response = client.get(link, follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else link
    response = client.post(
        form_url, {"password1": "a-New-passw0rd!", "password2": "a-New-passw0rd!"}
    )
    assert response.status_code == 302
    assert sign_in(client, "chris@readiness.example", "a-New-passw0rd!").status_code == 302
    assert client.get(AGENCIES).status_code == 200


def test_change_password(client, commander):
    client.force_login(commander)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "an0ther-Secret!", "password2": "an0ther-Secret!"},
    )
    assert response.status_code == 302
    commander.refresh_from_db()
    assert commander.check_password("an0ther-Secret!")


# Invitations -----------------------------------------------------------------------------------


@pytest.fixture
def invite(client, django_capture_on_commit_callbacks):
    """Post the invitation form; the email goes out after commit, as in production."""

    def post(**data):
        payload = {
            "email": "new.commander@agency.example",
            "full_name": "Nia New",
            "role": "commander",
        }
        payload.update(data)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("person-invite"), payload)

    return post


def test_invitation_end_to_end(client, invite, coordinator, agency, mailoutbox):
    client.force_login(coordinator)
    response = invite(agency=agency.pk)
    assert response.status_code == 302
    user = User.objects.get(email="new.commander@agency.example")
    assert (user.role, user.agency, user.has_usable_password()) == ("commander", agency, False)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.commander@agency.example"]
    assert agency.name in mailoutbox[0].body
    link = link_in(mailoutbox[0])

    client.logout()
    page = client.get(link)
    assert page.status_code == 200 and "new.commander@agency.example" in page.text
    response = client.post(
        link, {"new_password1": "Fresh-pass-42", "new_password2": "Fresh-pass-42"}
    )
    assert response.status_code == 302
    assert client.get(AGENCIES).status_code == 200  # signed in
    user.refresh_from_db()
    assert user.check_password("Fresh-pass-42")
    assert user.emailaddress_set.get().verified

    client.logout()
    assert client.get(link).status_code == 400  # single use
    actions = list(
        AuditEvent.objects.filter(object_id=str(user.pk)).values_list("action", flat=True)
    )
    assert "user.invite" in actions and "user.invitation_accepted" in actions
    invited = AuditEvent.objects.get(action="user.invite")
    assert invited.actor == coordinator
    assert invited.changes["role"] == [None, "commander"]
    assert invited.changes["agency"] == [None, agency.name]


def test_invitation_link_expires(client, invite, coordinator, agency, mailoutbox, settings):
    client.force_login(coordinator)
    invite(agency=agency.pk)
    link = link_in(mailoutbox[0])
    client.logout()
    settings.INVITATION_MAX_AGE = -1  # every link is already too old
    response = client.get(link)
    assert response.status_code == 400
    assert "cannot be used" in response.text


def test_tampered_invitation_link(client, invite, coordinator, agency, mailoutbox):
    client.force_login(coordinator)
    invite(agency=agency.pk)
    link = link_in(mailoutbox[0])
    client.logout()
    assert client.get(link[:-3] + "abc/").status_code == 400
    assert client.get("/accounts/invitation/zzzz/abc-def/").status_code == 400


def test_invitation_form_errors(client, invite, coordinator, official):
    client.force_login(coordinator)
    response = invite(agency="")
    assert response.status_code == 422
    assert "Choose the agency this commander acts for" in response.text
    response = invite(email=official.email.upper(), role="official")
    assert response.status_code == 422
    assert "already has an account" in response.text


@pytest.mark.parametrize("who", ["commander", "official"])
def test_only_coordinators_invite(client, invite, request, who, agency):
    client.force_login(request.getfixturevalue(who))
    assert invite(agency=agency.pk).status_code == 403
    assert not User.objects.filter(email="new.commander@agency.example").exists()


def test_invited_coordinator_gets_the_admin(client, invite, coordinator):
    client.force_login(coordinator)
    invite(email="second@readiness.example", role="coordinator")
    assert User.objects.get(email="second@readiness.example").is_staff


# Deactivation and role changes ------------------------------------------------------------------


def edit(client, person, **changes):
    data = {
        "full_name": person.full_name or "X",
        "role": person.role,
        "agency": person.agency_id or "",
        "is_active": "on" if person.is_active else "",
    }
    data.update(changes)
    return client.post(reverse("person-edit", args=[person.pk]), data)


def test_coordinator_deactivates_a_user(client, coordinator, commander):
    client.force_login(coordinator)
    assert edit(client, commander, is_active="").status_code == 302
    commander.refresh_from_db()
    assert not commander.is_active
    event = AuditEvent.objects.get(action="user.deactivate")
    assert event.changes == {"is_active": [True, False]}
    assert event.actor == coordinator


def test_role_change_is_audited_before_and_after(client, coordinator, commander):
    client.force_login(coordinator)
    edit(client, commander, role="official", agency="")
    commander.refresh_from_db()
    assert (commander.role, commander.agency) == ("official", None)
    event = AuditEvent.objects.get(action="user.update")
    assert event.changes["role"] == ["commander", "official"]
    assert event.changes["agency"][1] is None


def test_coordinator_cannot_lock_themselves_out(client, coordinator):
    client.force_login(coordinator)
    response = edit(client, coordinator, is_active="")
    assert response.status_code == 422
    coordinator.refresh_from_db()
    assert coordinator.is_active


def test_people_page_lists_everyone_with_state(client, coordinator, commander, official):
    invited = UserFactory(email="pending@readiness.example", role=User.Role.OFFICIAL, mfa=False)
    invited.set_unusable_password()
    invited.save()
    gone = UserFactory(email="gone@readiness.example", is_active=False)
    client.force_login(coordinator)
    rows = {u.email: u for u in client.get(reverse("people")).context["users"]}
    assert commander.email in rows and official.email in rows
    page = client.get(reverse("people")).text
    assert commander.agency.name in page
    assert "Invited" in page and "Deactivated" in page
    assert rows[official.email].has_mfa and not rows[invited.email].has_mfa
    assert rows[gone.email].is_active is False


def test_agency_commander_requires_an_agency_in_the_database(db):
    from django.db import IntegrityError, transaction

    user = UserFactory(role=User.Role.OFFICIAL)
    with transaction.atomic(), pytest.raises(IntegrityError):
        User.objects.filter(pk=user.pk).update(role=User.Role.COMMANDER)
    user.refresh_from_db()
    assert user.role == User.Role.OFFICIAL


def test_unverified_address_gets_a_verification_email_not_a_session(client, db, mailoutbox):
    user = UserFactory(
        email="chris@readiness.example", role=User.Role.COMMANDER, agency=AgencyFactory()
    )
    user.emailaddress_set.update(verified=False)
    response = sign_in(client, "chris@readiness.example", PASSWORD)
    assert response.status_code == 302
    assert client.get(AGENCIES).status_code == 302  # not signed in until verified
    assert len(mailoutbox) == 1 and "confirm" in mailoutbox[0].body.lower()
    client.get(link_in(mailoutbox[0]))  # allauth confirms on GET only with a POST form
    confirm = client.post(link_in(mailoutbox[0]))
    assert confirm.status_code == 302
    assert user.emailaddress_set.get().verified


def test_hsts_and_secure_cookies_in_production_mode(client, settings, official):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    response = client.get(reverse("account_login"), secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    csrf = response.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"]
    response = client.post(
        reverse("account_login"),
        {"login": official.email, "password": PASSWORD},
        secure=True,
    )
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]


def test_role_change_in_the_admin_is_audited(client, db):
    coordinator = UserFactory(role=User.Role.COORDINATOR, is_staff=True)
    official = UserFactory(role=User.Role.OFFICIAL, email="olivia@readiness.example")
    client.force_login(coordinator)
    url = reverse("admin:readiness_user_change", args=[official.pk])
    response = client.post(
        url,
        {
            "email": official.email,
            "full_name": official.full_name,
            "role": "coordinator",
            "agency": "",
            "is_active": "on",
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action="user.update", object_id=str(official.pk))
    assert event.changes["role"] == ["official", "coordinator"]
    assert event.actor == coordinator
