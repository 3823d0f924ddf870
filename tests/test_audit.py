"""The audit trail: what is recorded, with before and after values, and who may read it."""

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from agencies import services as registry
from agencies.models import Agency
from readiness.models import AuditEvent, User
from tests.conftest import sign_in
from tests.factories import AgencyFactory, RegionFactory, UserFactory

AUDIT = reverse("audit-log")


def test_sign_in_and_failed_sign_in_are_recorded(client, db):
    user = UserFactory(
        email="chris@readiness.example", role=User.Role.COMMANDER, agency=AgencyFactory()
    )
    sign_in(client, "chris@readiness.example", "wrong")
    sign_in(client, "chris@readiness.example", "correct-horse-battery")
    failed = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert (failed.actor, failed.actor_email, failed.ip) == (
        None,
        "chris@readiness.example",
        "127.0.0.1",
    )
    signed = AuditEvent.objects.get(action="auth.sign_in")
    assert signed.actor == user
    assert "wrong" not in str(failed.changes)  # never the password


def test_admin_edit_of_an_agency_records_before_and_after(client, db):
    coordinator = UserFactory(role=User.Role.COORDINATOR, is_staff=True)
    agency = AgencyFactory(sworn_officers=100, min_home_staffing=40, name="Old Name PD")
    client.force_login(coordinator)
    url = reverse("admin:agencies_agency_change", args=[agency.pk])
    data = {
        "code": agency.code, "name": "New Name PD", "kind": agency.kind, "region": agency.region_id,
        "county": agency.county, "city": agency.city, "address": "", "latitude": agency.latitude,
        "longitude": agency.longitude, "sworn_officers": 120, "min_home_staffing": 40,
        "active": "on",
        "teams-TOTAL_FORMS": 0, "teams-INITIAL_FORMS": 0,
        "contacts-TOTAL_FORMS": 0, "contacts-INITIAL_FORMS": 0,
    }  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action="agency.update")
    assert event.actor == coordinator
    assert event.changes == {"name": ["Old Name PD", "New Name PD"], "sworn_officers": [100, 120]}
    assert event.object_id == str(agency.pk)


def test_import_records_created_and_changed_records(db):
    RegionFactory(name="North")
    header = "record,key,agency,name,kind,region,latitude,longitude,sworn_officers\n"
    registry.registry_import(
        text=header + "agency,a-pd,,A Police Department,municipal,North,41,-88,50\n",
        source="first.csv",
    )
    registry.registry_import(
        text=header + "agency,a-pd,,A Police Department,municipal,North,41,-88,55\n",
        source="second.csv",
    )
    agency = Agency.objects.get(code="a-pd")
    created = AuditEvent.objects.get(action="agency.create")
    assert created.object_id == str(agency.pk)
    assert created.changes["code"] == [None, "a-pd"]
    assert created.changes["region"] == [None, "North"]  # by name, not by id
    updated = AuditEvent.objects.get(action="agency.update")
    assert updated.object_id == str(agency.pk)
    assert updated.changes == {"sworn_officers": [50, 55]}
    RegionFactory(name="South")
    registry.registry_import(
        text=header + "agency,a-pd,,A Police Department,municipal,South,41,-88,55\n"
    )
    moved = AuditEvent.objects.filter(action="agency.update").latest("id")
    assert moved.changes == {"region": ["North", "South"]}
    summaries = AuditEvent.objects.filter(action="registry.import").order_by("id")
    assert [e.object_repr for e in summaries] == ["first.csv", "second.csv", ""]
    assert summaries[1].changes == {"rows": 1, "agencies updated": 1}


def test_a_failed_or_dry_import_records_nothing(db):
    RegionFactory(name="North")
    header = "record,key,agency,name,kind,region,latitude,longitude\n"
    registry.registry_import(text=header + "agency,a,,A PD,municipal,Nowhere,41,-88\n")
    registry.registry_import(text=header + "agency,a,,A PD,municipal,North,41,-88\n", dry_run=True)
    assert not AuditEvent.objects.exists()


def test_audit_page_is_for_coordinators_and_filters(client, coordinator, official, commander):
    for who in (official, commander):
        client.force_login(who)
        assert client.get(AUDIT).status_code == 403
    client.force_login(coordinator)
    AuditEvent.objects.create(action="auth.sign_in", actor=official, actor_email=official.email)
    AuditEvent.objects.create(
        action="user.deactivate",
        actor=coordinator,
        actor_email=coordinator.email,
        object_type="user",
        object_repr="<b>Someone</b>",
        changes={"is_active": [True, False]},
    )
    page = client.get(AUDIT).text
    assert "user.deactivate" in page and "auth.sign_in" in page
    assert "True → False" in page
    assert "&lt;b&gt;Someone&lt;/b&gt;" in page  # escaped
    filtered = client.get(AUDIT, {"action": "user"})
    assert [e.action for e in filtered.context["page"].object_list] == ["user.deactivate"]
    by_actor = client.get(AUDIT, {"actor": official.email})
    assert {e.action for e in by_actor.context["page"].object_list} == {"auth.sign_in"}
    assert (
        client.get(AUDIT, {"since": "2000-01-01", "until": "2000-01-02"})
        .context["page"]
        .paginator.count
        == 0
    )


def test_the_trail_cannot_be_changed_through_the_app(client, coordinator):
    client.force_login(coordinator)
    for method in ("post", "put", "delete"):
        assert getattr(client, method)(AUDIT).status_code == 405
    from django.contrib import admin

    assert AuditEvent not in admin.site._registry


@pytest.mark.django_db
def test_postgres_refuses_updates_and_deletes(postgres):
    event = AuditEvent.objects.create(action="auth.sign_in")
    with transaction.atomic(), pytest.raises(DatabaseError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with transaction.atomic(), pytest.raises(DatabaseError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "auth.sign_in"


@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_truncate_outside_the_test_runners_flush(postgres):
    from django.db import connection

    event = AuditEvent.objects.create(action="auth.sign_in")
    with connection.cursor() as cursor:
        cursor.execute("SET readiness.audit_truncate = ''")  # as the app's own sessions
        try:
            with transaction.atomic(), pytest.raises(DatabaseError, match="TRUNCATE refused"):
                cursor.execute(f"TRUNCATE {AuditEvent._meta.db_table}")
        finally:
            cursor.execute("SET readiness.audit_truncate = 'allow'")  # the flush after the test
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_two_factor_setup_and_failures_are_recorded(client, db, django_capture_on_commit_callbacks):
    from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY

    from tests.conftest import totp_code

    user = UserFactory(role=User.Role.OFFICIAL, mfa=False, email="o@readiness.example")
    sign_in(client, user.email, "correct-horse-battery")
    client.get(reverse("mfa_activate_totp"))
    client.post(reverse("account_reauthenticate"), {"password": "correct-horse-battery"})
    client.get(reverse("mfa_activate_totp"))
    with django_capture_on_commit_callbacks(execute=True):  # allauth signals after commit
        client.post(
            reverse("mfa_activate_totp"), {"code": totp_code(client.session[SECRET_SESSION_KEY])}
        )
    client.logout()
    client.post(
        reverse("account_login"), {"login": user.email, "password": "correct-horse-battery"}
    )
    client.post(reverse("mfa_authenticate"), {"code": "000000"})
    actions = set(AuditEvent.objects.filter(actor=user).values_list("action", flat=True))
    assert {"auth.mfa_added", "auth.mfa_failed"} <= actions


def test_password_change_is_recorded(client, commander):
    client.force_login(commander)
    client.post(
        reverse("account_change_password"),
        {
            "oldpassword": "correct-horse-battery",
            "password1": "N3w-pass!x",
            "password2": "N3w-pass!x",
        },
    )
    assert AuditEvent.objects.filter(action="auth.password_changed", actor=commander).exists()


def test_times_in_the_audit_trail_are_local(client, db):
    from readiness.models import User as Person

    AuditEvent.objects.create(
        action="poll.extend", object_type="poll", object_id="1",
        changes={"deadline": ["2026-03-12T20:00:00+00:00", "2026-03-13T02:30:00+00:00"]},
    )  # fmt: skip
    client.force_login(UserFactory(role=Person.Role.COORDINATOR))
    page = client.get(reverse("audit-log")).text
    assert "2026-03-12 15:00 CDT → 2026-03-12 21:30 CDT" in page
    assert "+00:00" not in page
