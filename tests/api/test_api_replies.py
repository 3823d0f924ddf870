"""Replies through the API: the reply form's validation and messages, versions and conflicts,
closed polls, and who may answer for which agency."""

import pytest
from django.core import mail
from django.urls import reverse

from readiness.models import AuditEvent, User
from surveys import chasing
from surveys.models import Reply, ReplyLine, ReplyVersion
from tests.factories import SpecialTeamFactory, TeamTypeFactory, UserFactory
from tests.surveys.factories import open_invitation

from .conftest import api_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    """An open poll targeting SRTs; the agency has an SRT (12), an MFF (30) and a K9 team (4)."""
    srt, mff, k9 = (TeamTypeFactory(code=code) for code in ("swat", "mff", "k9"))
    invitation, _ = open_invitation(travel_minutes=60)
    poll, agency = invitation.poll, invitation.agency
    poll.target_team_types.set([srt])
    teams = {
        "srt": SpecialTeamFactory(agency=agency, team_type=srt, members=12, name="North SRT"),
        "mff": SpecialTeamFactory(agency=agency, team_type=mff, members=30, name="North MFF"),
        "k9": SpecialTeamFactory(agency=agency, team_type=k9, members=4, name="North K9"),
    }
    commander = UserFactory(role=User.Role.COMMANDER, agency=agency, full_name="Dana Reyes")
    return {"poll": poll, "agency": agency, "teams": teams, "commander": commander,
            "page": reverse("surveys:my-agency-reply", args=[poll.pk])}  # fmt: skip


def page_answer(setup, **overrides) -> dict:
    """A complete 'available' answer for the SRT, as the reply page posts it."""
    srt = setup["teams"]["srt"].pk
    data = {
        "version": 0,
        "decision": "available",
        "authorised_by_name": "Dana Reyes",
        "authorised_by_rank": "Chief",
        f"team-{srt}-officers": 8,
        f"team-{srt}-vehicles": 3,
        f"team-{srt}-depart_minutes": 30,
        f"team-{srt}-travel_minutes": 55,
        f"team-{srt}-deploy_hours": 12,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def as_json(setup, page_data: dict) -> dict:
    """The same answer as the API takes it: team fields become lines."""
    body, lines = {"poll": setup["poll"].pk}, {}
    for key, value in page_data.items():
        if key.startswith("team-"):
            _, team, field = key.split("-", 2)
            lines.setdefault(int(team), {"team": int(team)})[field] = value
        else:
            body[key] = value
    body["lines"] = list(lines.values())
    return body


def page_messages(response) -> list[str]:
    """Every message the reply page showed, field by field."""
    submission = response.context["submission"]
    messages = list(submission.errors)
    for form in [submission.form, *submission.lines]:
        for errors in form.errors.values():
            messages.extend(errors)
    return sorted(messages)


def api_messages(response) -> list[str]:
    return sorted(m for messages in response.json()["errors"].values() for m in messages)


SRT = "team-{srt}-"
BAD_INPUTS = [
    {SRT + "officers": -1},
    {SRT + "officers": 13},
    {SRT + "officers": "lots"},
    {SRT + "depart_minutes": -5},
    {SRT + "depart_minutes": 4321},
    {SRT + "travel_minutes": 100000},
    {SRT + "depart_minutes": None},
    {SRT + "vehicles": -2},
    {SRT + "deploy_hours": 0},
    {SRT + "officers": 0},
    {"decision": "unavailable"},
    {"decision": None},
    {"decision": "maybe"},
    {"authorised_by_name": ""},
    {"authorised_by_rank": ""},
    {"decision": "conditional"},
    {"conditions": ["emergencies_only"]},
    {"decision": "conditional", "conditions": ["other"]},
    {"decision": "conditional", "conditions": ["no-such-condition"]},
    {"version": None},
    {"version": -1},
    {"note": "x" * 2001},
    {"team-999999-officers": 4, "team-999999-depart_minutes": 5, "team-999999-travel_minutes": 5},
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda b: ",".join(b)[:40])
def test_the_reply_forms_bad_inputs_give_the_same_errors_through_the_api(client, setup, bad):
    srt = setup["teams"]["srt"].pk
    data = page_answer(setup, **{k.format(srt=srt): v for k, v in bad.items()})
    client.force_login(setup["commander"])
    page = client.post(setup["page"], data)
    assert page.status_code == 422
    response = client.post(reverse("api:reply-list"), as_json(setup, data), "application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert api_messages(response) == page_messages(page)
    assert Reply.objects.count() == 0 and ReplyVersion.objects.count() == 0


def test_a_line_error_names_the_line_and_field(client, setup):
    srt = setup["teams"]["srt"].pk
    body = as_json(setup, page_answer(setup, **{f"team-{srt}-travel_minutes": None}))
    body["lines"].insert(0, {"team": setup["teams"]["k9"].pk, "officers": 2,
                             "depart_minutes": 10, "travel_minutes": 40})  # fmt: skip
    client.force_login(setup["commander"])
    response = client.post(reverse("api:reply-list"), body, "application/json")
    assert response.json()["errors"] == {
        "lines.1.travel_minutes": ["Required when officers are available."]
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": "all of them"}, "lines"),
        ({"lines": [{"officers": 3}]}, "lines.0.team"),
        ({"lines": [{"team": "srt"}]}, "lines.0.team"),
        ({"conditions": "other"}, "conditions"),
        ({"decision": ["available"]}, "decision"),
    ],
)
def test_json_of_the_wrong_shape_is_refused_with_the_field_named(client, setup, body, field):
    client.force_login(setup["commander"])
    data = {**as_json(setup, page_answer(setup)), **body}
    response = client.post(reverse("api:reply-list"), data, "application/json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Reply.objects.count() == 0


def test_a_commander_answers_then_changes_the_answer_with_its_version(
    client, setup, django_capture_on_commit_callbacks
):
    client.force_login(setup["commander"])
    body = as_json(setup, page_answer(setup))
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(reverse("api:reply-list"), body, "application/json")
    assert created.status_code == 201
    reply = created.json()
    assert reply["version"] == 1 and reply["officers"] == 8
    assert reply["lines"][0]["team"]["id"] == setup["teams"]["srt"].pk
    assert reply["lines"][0]["arrival_minutes"] == 85
    assert reply["earliest_arrival_minutes"] == 85
    assert len(mail.outbox) == 1  # the confirmation, as for the page
    url = reverse("api:reply-detail", args=[reply["id"]])
    changed = {**body, "version": 1, "decision": "unavailable", "decline_reason": "Storm duty."}
    response = client.put(url, changed, "application/json")
    assert response.status_code == 200
    assert response.json()["version"] == 2 and response.json()["lines"] == []
    stored = Reply.objects.get()
    assert stored.decision == "unavailable" and stored.version == 2
    assert ReplyLine.objects.count() == 0
    assert list(stored.versions.values_list("number", flat=True).order_by("number")) == [1, 2]
    assert AuditEvent.objects.filter(action="reply.update", actor=setup["commander"]).exists()


def test_a_stale_version_is_a_conflict_that_returns_the_current_answer(client, setup):
    """Someone changed the answer on the page meanwhile: the API refuses to overwrite it."""
    client.force_login(setup["commander"])
    client.post(setup["page"], page_answer(setup))  # version 1, on the page
    body = as_json(setup, page_answer(setup, version=0, **{"authorised_by_rank": "Captain"}))
    response = client.post(reverse("api:reply-list"), body, "application/json")
    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "version_conflict"
    assert error["current"]["version"] == 1 and error["current"]["authorised_by_rank"] == "Chief"
    assert Reply.objects.get().authorised_by_rank == "Chief"
    # Sent again with the current version, it is saved.
    url = reverse("api:reply-detail", args=[error["current"]["id"]])
    response = client.put(url, {**body, "version": 1}, "application/json")
    assert response.status_code == 200 and response.json()["version"] == 2


def test_the_same_answer_sent_twice_is_saved_once(client, setup):
    client.force_login(setup["commander"])
    body = as_json(setup, page_answer(setup))
    assert client.post(reverse("api:reply-list"), body, "application/json").status_code == 201
    again = client.post(reverse("api:reply-list"), body, "application/json")
    assert again.status_code == 200 and again.json()["version"] == 1
    assert ReplyVersion.objects.count() == 1


@pytest.mark.parametrize("end", ["close", "cancel"])
def test_a_closed_or_cancelled_poll_refuses_answers_and_saves_nothing(client, setup, end, rf):
    request = rf.post("/")
    request.user = setup["poll"].created_by
    getattr(chasing, f"poll_{end}")(poll=setup["poll"], request=request)
    client.force_login(setup["commander"])
    body = as_json(setup, page_answer(setup))
    response = client.post(reverse("api:reply-list"), body, "application/json")
    assert response.status_code == 409
    assert response.json()["code"] == {"close": "closed", "cancel": "cancelled"}[end]
    assert Reply.objects.count() == 0


def test_a_commander_cannot_answer_for_another_agency_or_a_poll_it_was_not_asked(client, setup):
    other_invitation, _ = open_invitation()
    other = UserFactory(role=User.Role.COMMANDER, agency=other_invitation.agency)
    client.force_login(other)
    # Agency B names agency A's team in agency A's poll: B was not asked, nothing is saved.
    body = as_json(setup, page_answer(setup))
    response = client.post(reverse("api:reply-list"), body, "application/json")
    assert response.status_code == 400
    assert response.json()["errors"]["poll"] == ["Your agency was not asked in this poll."]
    # In its own poll, A's team is not one of B's.
    body["poll"] = other_invitation.poll_id
    response = client.post(reverse("api:reply-list"), body, "application/json")
    assert response.status_code == 400
    assert "own teams can be answered for" in response.json()["errors"]["non_field_errors"][0]
    assert Reply.objects.count() == 0


def test_a_commanders_token_answers_for_its_agency_without_a_confirmation_email(
    client, setup, django_capture_on_commit_callbacks
):
    key = api_token(role=User.Role.COMMANDER, agency=setup["agency"], name="Aurora CAD")
    body = as_json(setup, page_answer(setup))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("api:reply-list"), body, "application/json",
            headers={"Authorization": f"Bearer {key}"},
        )  # fmt: skip
    assert response.status_code == 201
    version = ReplyVersion.objects.get()
    assert version.author.startswith("API token: Aurora CAD")
    assert mail.outbox == []  # a service account has no mailbox
    event = AuditEvent.objects.get(action="reply.create")
    assert event.actor == version.user and event.actor.api_token.name == "Aurora CAD"


def test_coordinators_and_officials_read_answers_but_cannot_write_them(client, setup):
    client.force_login(setup["commander"])
    client.post(reverse("api:reply-list"), as_json(setup, page_answer(setup)), "application/json")
    for role in (User.Role.OFFICIAL, User.Role.COORDINATOR):
        client.force_login(UserFactory(role=role))
        listed = client.get(reverse("api:reply-list"), {"poll": setup["poll"].pk}).json()
        assert [r["agency"]["id"] for r in listed["results"]] == [setup["agency"].pk]
        body = {**as_json(setup, page_answer(setup)), "version": 1, "note": "from HQ"}
        url = reverse("api:reply-detail", args=[listed["results"][0]["id"]])
        assert client.put(url, body, "application/json").status_code == 403
    assert Reply.objects.get().note == ""
