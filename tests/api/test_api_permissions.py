"""Every API endpoint and method, for every kind of caller, by session and by token.

Endpoints are collected from the router (and the views beside it), so a new endpoint or method
without a rule here fails the test."""

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from agencies.models import TeamMember
from readiness.accounts import services
from readiness.api.urls import EXTRA, router
from readiness.models import User
from surveys.models import Poll, Reply
from tests.factories import AgencyFactory, ContactFactory, SpecialTeamFactory, UserFactory
from tests.surveys.factories import PollFactory, open_invitation

ROLES = ["anonymous", "commander_a", "commander_b", "official", "coordinator"]
WRITE_METHODS = {"post", "put", "patch", "delete"}


def every(status):
    return dict.fromkeys(ROLES, status)


def signed_in(status):
    return {**every(status), "anonymous": 401}


def coordinators(status):
    return {**every(403), "anonymous": 401, "coordinator": status}


def readers(status):
    """Coordinators and officials (what the poll pages and dashboards allow)."""
    return {**coordinators(status), "official": status}


def agency_a_only(status):
    """Readable by every signed-in caller, but commander B sees only their own agency's."""
    return {**signed_in(status), "commander_b": 404}


def keepers(status):
    """Coordinators and commanders (each commander's own agency's rows)."""
    return {**every(403), "anonymous": 401, "commander_a": status, "commander_b": status,
            "coordinator": status}  # fmt: skip


def own_agency(status):
    """Agency A's own commander and coordinators; B's commander does not see A (404)."""
    return {**keepers(status), "commander_b": 404}


def commanders(status, *, commander_b=None):
    return {**every(403), "anonymous": 401, "commander_a": status,
            "commander_b": status if commander_b is None else commander_b}  # fmt: skip


def valid_reply(w):
    return {"poll": w["open_poll"].pk, "version": 0, "decision": "unavailable",
            "decline_reason": "Committed to a local event."}  # fmt: skip


# (url name, method): (args builder, body builder, {role: status})
RULES = {
    ("api:api-root", "get"): (None, None, signed_in(200)),
    ("api:me", "get"): (None, None, signed_in(200)),
    ("api:standing-readiness", "get"): (None, None, readers(200)),
    ("api:region-list", "get"): (None, None, signed_in(200)),
    ("api:region-detail", "get"): (lambda w: [w["agency_a"].region_id], None, signed_in(200)),
    ("api:team-type-list", "get"): (None, None, signed_in(200)),
    ("api:team-type-detail", "get"): (lambda w: [w["team_a"].team_type_id], None, signed_in(200)),
    ("api:agency-list", "get"): (None, None, signed_in(200)),
    ("api:agency-detail", "get"): (lambda w: [w["agency_a"].pk], None, agency_a_only(200)),
    ("api:team-list", "get"): (None, None, signed_in(200)),
    ("api:team-detail", "get"): (lambda w: [w["team_a"].pk], None, agency_a_only(200)),
    # An agency's own commander (and coordinators) read its contacts and keep the record current;
    # another agency's commander does not learn it exists (404) or is told there is none (400).
    ("api:contact-list", "get"): (None, None, keepers(200)),
    ("api:contact-list", "post"): (
        None,
        lambda w: {"agency": w["agency_a"].pk, "name": "Robin New", "email": "robin@a.example"},
        {**keepers(201), "commander_b": 400},
    ),
    ("api:contact-detail", "get"): (lambda w: [w["contact_a"].pk], None, own_agency(200)),
    ("api:contact-detail", "patch"): (
        lambda w: [w["contact_a"].pk],
        lambda w: {"title": "Captain"},
        own_agency(200),
    ),
    # Rosters: the agency's own commander only (coordinators where the setting allows; off).
    ("api:team-member-list", "get"): (None, None, {**commanders(200), "coordinator": 403}),
    ("api:team-member-list", "post"): (
        None,
        lambda w: {"team": w["team_a"].pk, "name": "New Member"},
        {**commanders(201, commander_b=400), "coordinator": 403},
    ),
    ("api:team-member-detail", "get"): (
        lambda w: [w["member_a"].pk],
        None,
        {**commanders(200, commander_b=404), "coordinator": 403},
    ),
    ("api:team-member-detail", "patch"): (
        lambda w: [w["member_a"].pk],
        lambda w: {"rank": "Sergeant"},
        {**commanders(200, commander_b=404), "coordinator": 403},
    ),
    ("api:team-list", "post"): (
        None,
        lambda w: {
            "agency": w["agency_a"].pk,
            "name": "New Team",
            "members": 6,
            "team_type": w["team_a"].team_type_id,
        },
        {**keepers(201), "commander_b": 400},
    ),
    ("api:team-detail", "patch"): (
        lambda w: [w["team_a"].pk],
        lambda w: {"members": 30},
        {**own_agency(200), "official": 403},
    ),
    ("api:agency-detail", "patch"): (
        lambda w: [w["agency_a"].pk],
        lambda w: {"city": "Springfield"},
        own_agency(200),
    ),
    ("api:agency-verify", "post"): (lambda w: [w["agency_a"].pk], None, own_agency(200)),
    # Commanders read the sent polls their agency was asked; the draft is nobody's but staff's.
    ("api:poll-list", "get"): (None, None, signed_in(200)),
    ("api:poll-list", "post"): (None, lambda w: {}, coordinators(400)),
    ("api:poll-detail", "get"): (lambda w: [w["open_poll"].pk], None, agency_a_only(200)),
    ("api:poll-detail", "put"): (lambda w: [w["poll"].pk], lambda w: {}, coordinators(400)),
    ("api:poll-detail", "patch"): (lambda w: [w["poll"].pk], lambda w: {}, coordinators(200)),
    ("api:poll-send", "post"): (lambda w: [w["poll"].pk], None, coordinators(202)),
    ("api:poll-close", "post"): (lambda w: [w["open_poll"].pk], None, coordinators(200)),
    ("api:poll-cancel", "post"): (lambda w: [w["open_poll"].pk], None, coordinators(200)),
    ("api:poll-remind", "post"): (lambda w: [w["open_poll"].pk], None, coordinators(200)),
    ("api:poll-duplicate", "post"): (lambda w: [w["open_poll"].pk], None, coordinators(201)),
    ("api:poll-extend", "post"): (
        lambda w: [w["open_poll"].pk],
        lambda w: {"deadline": (timezone.now() + timedelta(days=5)).isoformat()},
        coordinators(200),
    ),
    ("api:poll-add-agencies", "post"): (
        lambda w: [w["open_poll"].pk],
        lambda w: {"agencies": [w["agency_b"].pk]},
        coordinators(200),
    ),
    ("api:poll-reopen", "post"): (lambda w: [w["open_poll"].pk], None, coordinators(409)),
    # The waves' controls: coordinators only; a poll not asked in waves is a 409.
    ("api:poll-waves", "post"): (lambda w: [w["open_poll"].pk, "pause"], None, coordinators(409)),
    ("api:poll-test-email", "post"): (lambda w: [w["poll"].pk], None, coordinators(202)),
    ("api:invitation-revoke", "post"): (lambda w: [w["invitation_a"].pk], None, coordinators(200)),
    ("api:invitation-reissue", "post"): (
        lambda w: [w["invitation_a"].pk],
        None,
        coordinators(200),
    ),
    ("api:invitation-send-to", "post"): (
        lambda w: [w["invitation_a"].pk],
        lambda w: {"contact": 0},
        coordinators(400),
    ),
    ("api:poll-readiness", "get"): (lambda w: [w["open_poll"].pk], None, readers(200)),
    ("api:invitation-list", "get"): (None, None, signed_in(200)),
    ("api:invitation-detail", "get"): (
        lambda w: [w["invitation_a"].pk],
        None,
        agency_a_only(200),
    ),
    ("api:reply-list", "get"): (None, None, signed_in(200)),
    # Agency A has answered, so a first answer conflicts; B was not asked: told so.
    ("api:reply-list", "post"): (None, valid_reply, commanders(409, commander_b=400)),
    ("api:reply-detail", "get"): (lambda w: [w["reply_a"].pk], None, agency_a_only(200)),
    ("api:reply-detail", "put"): (
        lambda w: [w["reply_a"].pk],
        lambda w: {**valid_reply(w), "version": 1, "decline_reason": "Still committed."},
        commanders(200, commander_b=404),
    ),
}


def endpoints():
    """(url name, method) of every route the router makes, and of the views beside it."""
    found = {("api:api-root", "get")}
    for _prefix, viewset, basename in router.registry:
        for route in router.get_routes(viewset):
            name = "api:" + route.name.format(basename=basename)
            for method, action in route.mapping.items():
                if hasattr(viewset, action) and method in viewset.http_method_names:
                    found.add((name, method))
    for pattern in EXTRA:
        view = pattern.callback.view_class
        for method in view.http_method_names:
            if method not in ("head", "options") and hasattr(view, method):
                found.add((f"api:{pattern.name}", method))
    return found


def test_every_api_endpoint_and_method_has_a_rule():
    missing = sorted(endpoints() - set(RULES))
    assert missing == [], f"add a permission rule for: {missing}"
    stale = sorted(set(RULES) - endpoints())
    assert stale == [], f"rules for endpoints that no longer exist: {stale}"


@pytest.fixture
def world(db):
    agency_a, agency_b = AgencyFactory(), AgencyFactory()
    contact_a = ContactFactory(agency=agency_a, role="primary")
    ContactFactory(agency=agency_b, role="primary")
    team_a = SpecialTeamFactory(agency=agency_a)
    coordinator = UserFactory(role=User.Role.COORDINATOR, is_staff=True)
    poll = PollFactory(created_by=coordinator, target_agencies=[agency_a, agency_b])
    open_poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now(), created_by=coordinator)
    invitation_a, _ = open_invitation(agency=agency_a, poll=open_poll)
    reply_a = Reply.objects.create(
        poll=open_poll, agency=agency_a, decision="unavailable", decline_reason="Busy",
        created_at=timezone.now(), updated_at=timezone.now(), version=1,
    )  # fmt: skip
    return {
        "poll": poll,
        "open_poll": open_poll,
        "agency_a": agency_a,
        "agency_b": agency_b,
        "contact_a": contact_a,
        "team_a": team_a,
        "member_a": TeamMember.objects.create(team=team_a, agency=agency_a, name="Dana Ruiz"),
        "invitation_a": invitation_a,
        "reply_a": reply_a,
        "anonymous": None,
        "commander_a": UserFactory(role=User.Role.COMMANDER, agency=agency_a),
        "commander_b": UserFactory(role=User.Role.COMMANDER, agency=agency_b),
        "official": UserFactory(role=User.Role.OFFICIAL),
        "coordinator": coordinator,
    }


def token_for(user: User, issuer: User) -> str:
    request = RequestFactory().post("/api-tokens/")
    request.user = issuer
    _, key = services.api_token_issue(
        request=request, name=f"{user.role} integration", role=user.role, agency=user.agency
    )
    return key


def call(client, world, role, auth, method, url, body):
    client.logout()
    headers = {}
    if world[role] is not None:
        if auth == "session":
            client.force_login(world[role])
        else:
            headers["Authorization"] = f"Bearer {token_for(world[role], world['coordinator'])}"
    kwargs = {"content_type": "application/json"} if method in WRITE_METHODS else {}
    if body is not None:
        kwargs["data"] = body
    return getattr(client, method)(url, headers=headers, **kwargs)


@pytest.mark.parametrize("auth", ["session", "token"])
@pytest.mark.parametrize(("name", "method"), sorted(RULES))
@pytest.mark.parametrize("role", ROLES)
def test_api_endpoints(client, world, name, method, role, auth):
    args, body, expected = RULES[(name, method)]
    url = reverse(name, args=args(world) if args else None)
    response = call(client, world, role, auth, method, url, body(world) if body else None)
    assert response.status_code == expected[role], (
        f"{role} ({auth}) {method.upper()} {url}: {response.content[:300]}"
    )
    assert response["Content-Type"] == "application/json"
    if response.status_code >= 400:
        error = response.json()
        assert error["status"] == response.status_code
        assert error["code"] and error["detail"]
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_commander_lists_only_their_own_agencys_rows(client, world):
    """Lists are scoped, not only details: commander B sees nothing of agency A."""
    client.force_login(world["commander_b"])
    for name in ("api:agency-list", "api:team-list", "api:invitation-list", "api:reply-list",
                 "api:poll-list"):  # fmt: skip
        rows = client.get(reverse(name)).json()["results"]
        agencies = {row.get("agency", {}).get("id") if name != "api:agency-list" else row["id"]
                    for row in rows}  # fmt: skip
        assert world["agency_a"].pk not in agencies, name
    assert client.get(reverse("api:poll-list")).json()["count"] == 0
    client.force_login(world["commander_a"])
    polls = client.get(reverse("api:poll-list")).json()["results"]
    assert [p["id"] for p in polls] == [world["open_poll"].pk]  # not the draft


def test_a_token_acts_with_its_role_not_its_issuers(client, world):
    """A coordinator issues an official's token: it reads, but cannot send or see contacts."""
    key = token_for(world["official"], world["coordinator"])
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(reverse("api:poll-list"), headers=headers).status_code == 200
    assert client.get(reverse("api:contact-list"), headers=headers).status_code == 403
    url = reverse("api:poll-send", args=[world["poll"].pk])
    assert client.post(url, headers=headers).status_code == 403
    world["poll"].refresh_from_db()
    assert world["poll"].state == Poll.State.DRAFT


def test_a_session_write_needs_the_csrf_token(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world["coordinator"])
    response = client.post(reverse("api:poll-close", args=[world["open_poll"].pk]))
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    world["open_poll"].refresh_from_db()
    assert world["open_poll"].state == Poll.State.OPEN


def test_unknown_api_paths_answer_in_json(client, world):
    client.force_login(world["official"])
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_role_that_needs_two_factor_is_told_so_in_json(client, db):
    official = UserFactory(role=User.Role.OFFICIAL, mfa=False)
    client.force_login(official)
    response = client.get(reverse("api:poll-list"))
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_required"
