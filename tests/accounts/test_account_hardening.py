"""The holes a review found, closed: admin sign-in, superusers, two-factor, invitations, IPs."""

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from readiness.models import User
from tests.conftest import sign_in
from tests.factories import TOTP_SECRET, AgencyFactory, UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def admin_coordinator(db):
    return UserFactory(role=User.Role.COORDINATOR, is_staff=True, email="c@readiness.example")


@pytest.fixture
def superuser(db):
    return UserFactory(
        role=User.Role.COORDINATOR, is_staff=True, is_superuser=True, email="root@readiness.example"
    )


def test_admin_sign_in_form_goes_through_two_factor(client, admin_coordinator):
    # The admin's own password form is replaced by allauth's sign-in, with its second step.
    response = client.post(
        reverse("admin:login"), {"username": admin_coordinator.email, "password": PASSWORD}
    )
    assert client.get(reverse("admin:index")).status_code == 302
    assert "/accounts/login/" in response.get("Location", "/accounts/login/")
    response = sign_in(client, admin_coordinator.email, PASSWORD)
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("admin:index")).status_code == 302  # password alone: no
    sign_in(client, admin_coordinator.email, PASSWORD, totp_secret=TOTP_SECRET)
    assert client.get(reverse("admin:index")).status_code == 200


def test_coordinator_cannot_touch_a_superuser(client, admin_coordinator, superuser):
    client.force_login(admin_coordinator)
    edit = reverse("person-edit", args=[superuser.pk])
    assert client.get(edit).status_code == 403
    assert client.post(edit, {"full_name": "X", "role": "official"}).status_code == 403
    assert client.post(reverse("person-resend", args=[superuser.pk])).status_code == 403
    admin_change = reverse("admin:readiness_user_change", args=[superuser.pk])
    assert client.post(admin_change, {"role": "official"}).status_code == 403
    superuser.refresh_from_db()
    assert superuser.is_active and superuser.role == User.Role.COORDINATOR


def test_coordinator_cannot_grant_superuser_or_set_passwords(client, admin_coordinator, official):
    client.force_login(admin_coordinator)
    url = reverse("admin:readiness_user_change", args=[official.pk])
    form = client.get(url).context["adminform"].form
    assert {"is_superuser", "is_staff", "groups", "email"}.isdisjoint(form.fields)
    password = reverse("admin:auth_user_password_change", args=[official.pk]).replace(
        "auth/user", "readiness/user"
    )
    assert client.get(password).status_code == 403


def test_superuser_can_grant_admin_access(client, superuser, official):
    client.force_login(superuser)
    url = reverse("admin:readiness_user_change", args=[official.pk])
    assert "is_superuser" in client.get(url).context["adminform"].form.fields


def test_required_roles_cannot_switch_two_factor_off(client, official):
    sign_in(client, official.email, PASSWORD, totp_secret=TOTP_SECRET)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    client.post(reverse("mfa_deactivate_totp"))
    assert Authenticator.objects.filter(user=official, type=Authenticator.Type.TOTP).exists()


def test_only_setup_pages_are_reachable_before_two_factor(client, db):
    user = UserFactory(role=User.Role.OFFICIAL, mfa=False)
    sign_in(client, user.email, PASSWORD)
    for name in ("people", "audit-log", "account_email", "account_change_password", "home"):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"] == reverse("mfa_activate_totp"), name
    assert client.get(reverse("mfa_activate_totp")).status_code in (200, 302)
    assert client.get(reverse("healthz")).status_code == 200


def test_invitation_link_is_dead_once_the_person_has_signed_in(
    client, db, django_capture_on_commit_callbacks, mailoutbox
):
    from readiness.accounts.services import invitation_url

    agency = AgencyFactory()
    person = UserFactory(role=User.Role.COMMANDER, agency=agency)
    person.set_unusable_password()
    person.save()
    request = type("R", (), {"build_absolute_uri": staticmethod(lambda p: p)})()
    link = invitation_url(request=request, user=person)
    assert client.get(link).status_code == 200
    from django.utils import timezone

    User.objects.filter(pk=person.pk).update(last_login=timezone.now())
    assert client.get(link).status_code == 400


def test_roles_and_admin_access_stay_in_step(client, admin_coordinator, official):
    client.force_login(admin_coordinator)
    data = {"full_name": "O", "role": "coordinator", "agency": "", "is_active": "on"}
    client.post(reverse("person-edit", args=[official.pk]), data)
    official.refresh_from_db()
    assert official.is_staff
    client.post(reverse("person-edit", args=[official.pk]), {**data, "role": "official"})
    official.refresh_from_db()
    assert not official.is_staff


def test_commander_of_a_retired_agency_can_still_be_edited(client, admin_coordinator):
    retired = AgencyFactory(active=False)
    commander = UserFactory(role=User.Role.COMMANDER, agency=retired)
    client.force_login(admin_coordinator)
    response = client.post(
        reverse("person-edit", args=[commander.pk]),
        {"full_name": "Still Here", "role": "commander", "agency": retired.pk, "is_active": ""},
    )
    assert response.status_code == 302
    commander.refresh_from_db()
    assert (commander.full_name, commander.is_active) == ("Still Here", False)


def test_a_forged_forwarded_for_header_is_refused_not_a_crash(client, db, settings, rf):
    from readiness.audit import client_ip

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1  # behind the TLS proxy
    UserFactory(email="someone@readiness.example")
    response = client.post(
        reverse("account_login"),
        {"login": "someone@readiness.example", "password": "x"},
        HTTP_X_FORWARDED_FOR="not-an-ip",
    )
    assert response.status_code == 403  # allauth cannot tell who is asking: no attempt at all
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="not-an-ip")) is None
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9")) == "203.0.113.9"
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0  # no proxy: the peer address, whatever the header
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9")) == "127.0.0.1"
    settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER = "X-Real-IP"  # a proxy that says who in a header
    assert client_ip(rf.get("/", HTTP_X_REAL_IP="198.51.100.7")) == "198.51.100.7"
    assert client_ip(rf.get("/", HTTP_X_REAL_IP="forged")) is None


def test_unknown_role_in_mfa_setting_stops_start_up():
    import os
    import subprocess
    import sys

    env = {**os.environ, "MFA_REQUIRED_ROLES": "coordinators"}
    proc = subprocess.run(
        [sys.executable, "-c", "import readiness.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "unknown role(s) coordinators" in proc.stderr
