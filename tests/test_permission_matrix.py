"""Every URL of the app, for every kind of visitor: the expected status.

URLs are collected from the URL conf, so a new URL without a rule here fails the test.
"""

from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from agencies.models import Agency, Contact
from readiness.models import User
from surveys.models import Invitation, Poll, Reply
from tests.factories import AgencyFactory, SpecialTeamFactory, UserFactory
from tests.surveys.factories import PollFactory, open_invitation

ROLES = ["anonymous", "commander_a", "commander_b", "official", "coordinator"]
SIGN_IN = 302  # anonymous visitors are sent to the sign-in page


def every(status):
    return dict.fromkeys(ROLES, status)


def staff_only(status, *, anonymous=SIGN_IN, denied=403):
    return {"anonymous": anonymous, "commander_a": denied, "commander_b": denied,
            "official": denied, "coordinator": status}  # fmt: skip


def roster_keeper(status):
    return {**staff_only(403), "commander_a": status, "commander_b": 404}


def upkeep(status):
    return {**staff_only(status), "commander_a": status, "commander_b": 404}


def signed_in(status):
    return {**every(status), "anonymous": SIGN_IN}


# name: (args builder, {method: {role: status}}). Every method the view accepts has its row,
# so a write view that checks the role only on GET cannot pass (test_every_method_has_a_rule).
# POSTs carry no data: an allowed role gets the form back with its errors (422) or the
# action's redirect; a refused one gets 403 (or the sign-in page) and nothing is written.
RULES = {
    "home": (None, {"get": signed_in(302)}),
    "healthz": (None, {"get": every(200)}),
    "invitation-accept": (lambda w: ["MQ", "bad-token"], {"get": every(400), "post": every(400)}),
    "people": (None, {"get": staff_only(200)}),
    "person-invite": (None, {"get": staff_only(200), "post": staff_only(422)}),
    "person-edit": (
        lambda w: [w["commander_a"].pk],
        {"get": staff_only(200), "post": staff_only(422)},
    ),
    "person-resend": (lambda w: [w["commander_a"].pk], {"post": staff_only(302)}),
    "audit-log": (None, {"get": staff_only(200)}),
    "agencies:agency-list": (None, {"get": signed_in(200)}),
    # Commanders see their own agency only; another agency is 404, so existence does not leak.
    "agencies:agency-detail": (
        lambda w: [w["agency_b"].pk],
        {"get": {**signed_in(200), "commander_a": 404}},
    ),
    # An agency's upkeep: its own commander and coordinators; another commander gets 404.
    **{
        name: (
            lambda w: [w["agency_a"].pk],
            {"get": upkeep(200), "post": upkeep(422)},
        )
        for name in ("agencies:agency-edit", "agencies:team-create", "agencies:contact-create")
    },
    **{
        name: (lambda w: [w["agency_a"].pk, 999999], {"get": upkeep(404), "post": upkeep(404)})
        for name in ("agencies:team-edit", "agencies:contact-edit")
    },
    "agencies:agency-verify": (lambda w: [w["agency_a"].pk], {"post": upkeep(302)}),
    # Rosters: counts for whoever sees the agency; names and changes for its own commander
    # (coordinators only where ROSTER_NAMES_TO_COORDINATORS is on; off here).
    "agencies:roster": (
        lambda w: [w["agency_a"].pk, w["team_a"].pk],
        {"get": {**signed_in(200), "commander_b": 404}},
    ),
    **{
        name: (
            lambda w: [w["agency_a"].pk, w["team_a"].pk],
            {"get": roster_keeper(200), "post": roster_keeper(422)},
        )
        for name in ("agencies:member-create", "agencies:roster-import")
    },
    "agencies:member-edit": (
        lambda w: [w["agency_a"].pk, w["team_a"].pk, 999999],
        {"get": roster_keeper(404), "post": roster_keeper(404)},
    ),
    "agencies:registry-import": (None, {"get": staff_only(200), "post": staff_only(422)}),
    "surveys:poll-list": (None, {"get": {**staff_only(200), "official": 200}}),
    "surveys:poll-create": (None, {"get": staff_only(200), "post": staff_only(422)}),
    "surveys:poll-preview": (None, {"post": staff_only(200)}),
    "surveys:poll-detail": (
        lambda w: [w["poll"].pk],
        {"get": {**staff_only(200), "official": 200}},
    ),
    "surveys:poll-edit": (
        lambda w: [w["poll"].pk],
        {"get": staff_only(200), "post": staff_only(422)},
    ),
    # A send asks first (confirm=yes sends): the confirmation page, nothing sent.
    "surveys:poll-send": (lambda w: [w["poll"].pk], {"post": staff_only(200)}),
    "surveys:poll-close": (lambda w: [w["poll"].pk], {"post": staff_only(302)}),
    "surveys:poll-cancel": (lambda w: [w["poll"].pk], {"post": staff_only(302)}),
    "surveys:poll-extend": (lambda w: [w["poll"].pk], {"post": staff_only(302)}),
    "surveys:poll-remind": (lambda w: [w["poll"].pk], {"post": staff_only(302)}),
    "surveys:poll-duplicate": (lambda w: [w["poll"].pk], {"post": staff_only(302)}),
    "surveys:invitation-revoke": (lambda w: [w["poll"].pk, 999999], {"post": staff_only(404)}),
    # The SMS provider's webhook: no session counts, only the provider's signature (none here).
    "surveys:sms-status": (None, {"post": every(403)}),
    "surveys:sms-inbound": (None, {"post": every(403)}),
    "surveys:inbound": (None, {"get": staff_only(200)}),
    "surveys:email-inbound": (None, {"post": every(403)}),
    "surveys:inbound-handled": (lambda w: [999999], {"post": staff_only(404)}),
    "surveys:inbound-open-form": (lambda w: [999999], {"post": staff_only(404)}),
    # A commander asks their members (their own agency's invitation only); a member's link.
    "surveys:my-agency-members": (
        lambda w: [w["open_poll"].pk],
        {
            "get": {**staff_only(403), "commander_a": 200, "commander_b": 404},
            "post": {**staff_only(403), "commander_a": 422, "commander_b": 404},
        },
    ),
    "surveys:my-agency-tally": (
        lambda w: [w["open_poll"].pk],
        {"get": {**staff_only(403), "commander_a": 200, "commander_b": 404}},
    ),
    "surveys:member-answer": (lambda w: ["not-a-token"], {"get": every(404), "post": every(404)}),
    "surveys:invitation-reissue": (lambda w: [w["poll"].pk, 999999], {"post": staff_only(404)}),
    "surveys:invitation-send-to": (
        lambda w: [w["poll"].pk, 999999],
        {"get": staff_only(404), "post": staff_only(404)},
    ),
    "surveys:poll-add": (
        lambda w: [w["open_poll"].pk],
        {"get": staff_only(200), "post": staff_only(422)},
    ),
    "surveys:poll-reopen": (lambda w: [w["open_poll"].pk], {"post": staff_only(302)}),
    # The waves' controls: coordinators only (a poll without waves says so and goes back).
    "surveys:poll-waves": (lambda w: [w["open_poll"].pk, "pause"], {"post": staff_only(302)}),
    "surveys:poll-test-email": (lambda w: [w["poll"].pk], {"post": staff_only(302)}),
    "surveys:reply": (lambda w: ["not-a-real-token"], {"get": every(404), "post": every(404)}),
    "surveys:reply-done": (lambda w: ["not-a-real-token"], {"get": every(404)}),
    "surveys:reply-feed": (
        lambda w: [w["poll"].pk],
        {"get": {**staff_only(200), "official": 200}},
    ),
    "surveys:reply-history": (
        lambda w: [w["open_poll"].pk, w["agency_a"].pk],
        {"get": {**staff_only(200), "official": 200}},
    ),
    # Commanders answer for their own agency only: a poll their agency was not asked is 404.
    "surveys:my-agency": (
        None,
        {"get": {**staff_only(403), "commander_a": 200, "commander_b": 200, "coordinator": 403}},
    ),
    "surveys:my-agency-reply": (
        lambda w: [w["open_poll"].pk],
        {
            method: {**staff_only(403), "commander_a": status, "commander_b": 404}
            for method, status in (("get", 200), ("post", 422))
        },
    ),
    "surveys:my-agency-reply-done": (
        lambda w: [w["open_poll"].pk],
        {"get": {**staff_only(403), "commander_a": 200, "commander_b": 404, "coordinator": 403}},
    ),
    "agencies:import-example": (None, {"get": staff_only(200)}),
    # Dashboards: coordinators and officials.
    "dashboard": (None, {"get": {**staff_only(200), "official": 200}}),
    **{
        name: (lambda w: [w["open_poll"].pk], {"get": {**staff_only(200), "official": 200}})
        for name in (
            "poll-dashboard",
            "poll-dashboard-summary",
            "poll-dashboard-map",
            "poll-dashboard-csv",
            "poll-dashboard-history-csv",
        )
    },
    "api-tokens": (None, {"get": staff_only(200), "post": staff_only(422)}),
    "api-token-revoke": (lambda w: [999999], {"post": staff_only(404)}),
    # The API's description is public; its data is not (tests/api/test_api_permissions.py).
    "api-schema": (None, {"get": every(200)}),
    "api-docs": (None, {"get": every(200)}),
}
# Names whose rules are elsewhere: the admin (coordinators with admin access, in this file),
# allauth's account pages (public or for the signed-in person themselves, in this file) and the
# API's endpoints (tests/api/test_api_permissions.py, generated from its router).
NAMESPACED_ELSEWHERE = ("admin:", "api:")
ACCOUNT_PREFIXES = ("account_", "mfa_")


def url_names(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from url_names(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", entry


def test_every_url_has_a_rule():
    missing = [
        name
        for name, _ in url_names()
        if name not in RULES
        and not name.startswith(NAMESPACED_ELSEWHERE)
        and not name.startswith(ACCOUNT_PREFIXES)
    ]
    assert missing == [], f"add a permission rule for: {missing}"


@pytest.fixture
def world(db):
    agency_a, agency_b = AgencyFactory(), AgencyFactory()
    coordinator = UserFactory(role=User.Role.COORDINATOR, is_staff=True)
    poll = Poll.objects.create(
        title="Chicago", message="Could you respond?", destination_name="Chicago",
        destination_latitude=41.88, destination_longitude=-87.63, created_by=coordinator,
        deadline=timezone.now() + timedelta(days=1), target_kinds=["municipal"],
    )  # fmt: skip
    open_poll, _ = open_invitation(
        agency=agency_a, poll=PollFactory(state=Poll.State.OPEN, created_by=coordinator)
    )
    Reply.objects.create(
        poll=open_poll.poll,
        agency=agency_a,
        decision="unavailable",
        decline_reason="Busy",
        created_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return {
        "poll": poll,
        "open_poll": open_poll.poll,
        "agency_a": agency_a,
        "team_a": SpecialTeamFactory(agency=agency_a),
        "agency_b": agency_b,
        "anonymous": None,
        "commander_a": UserFactory(role=User.Role.COMMANDER, agency=agency_a),
        "commander_b": UserFactory(role=User.Role.COMMANDER, agency=agency_b),
        "official": UserFactory(role=User.Role.OFFICIAL),
        "coordinator": coordinator,
    }


def visit(client, world, role, method, url):
    client.logout()
    if world[role] is not None:
        client.force_login(world[role])
    return getattr(client, method)(url)


def rule_cases():
    for name, (_, methods) in sorted(RULES.items()):
        for method in methods:
            yield name, method


def written(world) -> dict:
    """Rows a write view could leave behind; a refused request must leave none."""
    from readiness.models import ApiToken

    models = (Poll, Reply, Invitation, User, ApiToken, Agency, Contact)
    return {
        model.__name__: sorted(map(str, model.objects.values_list("pk", "updated_at")))
        if hasattr(model, "updated_at")
        else model.objects.count()
        for model in models
    }


@pytest.mark.parametrize(("name", "method"), list(rule_cases()))
@pytest.mark.parametrize("role", ROLES)
def test_app_urls(client, world, name, method, role):
    args, methods = RULES[name]
    expected = methods[method][role]
    url = reverse(name, args=args(world) if args else None)
    before = written(world)
    response = visit(client, world, role, method, url)
    assert response.status_code == expected, f"{role} {method.upper()} {url}"
    if response.status_code == SIGN_IN and role == "anonymous" and name != "healthz":
        assert "/accounts/login/" in response["Location"]
    refused = response.status_code in (403, 404) or (
        response.status_code == SIGN_IN and "/login/" in response.get("Location", "")
    )
    if refused:
        assert written(world) == before, f"a refused {method.upper()} {url} wrote data"


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_method_a_view_accepts_has_a_rule(client, world, name):
    """A view names the methods it accepts (405 with Allow for the rest); the rule covers each."""
    args, methods = RULES[name]
    client.force_login(world["coordinator"])
    response = client.generic("TRACE", reverse(name, args=args(world) if args else None))
    assert response.status_code == 405, f"{name} accepts any method: declare the ones it takes"
    allowed = {m.strip().lower() for m in response["Allow"].split(",")} - {"head", "options"}
    assert allowed == set(methods), f"{name} accepts {sorted(allowed)}"


def test_a_commander_lists_only_their_own_agency(client, world):
    client.force_login(world["commander_a"])
    listed = client.get(reverse("agencies:agency-list")).context["page"].object_list
    assert [a.pk for a in listed] == [world["agency_a"].pk]
    client.force_login(world["official"])
    listed = client.get(reverse("agencies:agency-list")).context["page"].object_list
    assert {a.pk for a in listed} == {world["agency_a"].pk, world["agency_b"].pk}


def test_a_commander_cannot_edit_people(client, world):
    client.force_login(world["commander_b"])
    url = reverse("person-edit", args=[world["commander_a"].pk])
    response = client.post(url, {"role": "commander", "agency": world["agency_b"].pk})
    assert response.status_code == 403
    world["commander_a"].refresh_from_db()
    assert world["commander_a"].agency == world["agency_a"]


ADMIN_URLS = ["admin:index", "admin:agencies_agency_changelist", "admin:readiness_user_changelist"]


@pytest.mark.parametrize("name", ADMIN_URLS)
@pytest.mark.parametrize("role", ROLES)
def test_admin_is_for_coordinators(client, world, name, role):
    response = visit(client, world, role, "get", reverse(name))
    if role == "coordinator":
        assert response.status_code == 200
    else:  # not staff: the admin asks them to sign in with an account that has access
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def account_urls():
    for name, pattern in url_names():
        if name.startswith(ACCOUNT_PREFIXES):
            yield name, list(pattern.pattern.regex.groupindex)


@pytest.mark.parametrize(("name", "params"), sorted(account_urls()))
@pytest.mark.parametrize("role", ["anonymous", "commander_a"])
def test_account_pages_never_fail(client, world, name, params, role):
    """allauth's own pages: public or about the visitor themselves; never an error page."""
    kwargs = dict.fromkeys(params, "x")
    response = visit(client, world, role, "get", reverse(name, kwargs=kwargs or None))
    assert response.status_code in (200, 302, 400, 404, 405), response.status_code


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        ("commander_a", {"My agency's polls"}),
        ("official", {"Dashboard", "Polls"}),
        ("coordinator", {"Dashboard", "Polls", "Import", "People", "Audit", "Admin"}),
    ],
)
def test_menu_offers_only_what_the_role_may_open(client, world, role, shown):
    page = visit(client, world, role, "get", reverse("agencies:agency-list")).text
    menu = page.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    labels = ("Dashboard", "Polls", "My agency's polls", "Import", "People", "Audit", "Admin")
    offered = {label for label in labels if f">{label}</a>" in menu}
    assert offered == shown
