"""Polls through the API: compose with the compose form's rules, edit drafts, send, remind,
extend, close and cancel, and the readiness figures with their ETag."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.dashboards import figures as dashboards
from readiness.models import AuditEvent, User
from surveys import replies
from surveys.models import Invitation, Poll, Reply
from tests.factories import AgencyFactory, ContactFactory, RegionFactory, UserFactory
from tests.surveys.factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator_client(client):
    client.force_login(UserFactory(role=User.Role.COORDINATOR, full_name="Casey Coordinator"))
    return client


def compose(**overrides) -> dict:
    data = {
        "title": "Chicago: weekend support",
        "purpose": "planning",
        "situation": "emergency",
        "message": "Would your special teams respond to critical situations in Chicago?",
        "destination_name": "Chicago (City Hall)",
        "destination_latitude": 41.8837,
        "destination_longitude": -87.6319,
        "target_kinds": ["municipal"],
        "deadline": (timezone.now() + timedelta(days=1)).isoformat(),
        "requirements": ["Current SWAT certification"],
        "reminder_hours_before": [24, 4],
    }
    data.update(overrides)
    return data


def test_a_coordinator_composes_a_draft_and_reads_it_back(coordinator_client):
    response = coordinator_client.post(reverse("api:poll-list"), compose(), "application/json")
    assert response.status_code == 201, response.content
    poll = response.json()
    assert poll["state"] == "draft" and poll["created_by"]["name"] == "Casey Coordinator"
    assert poll["requirements"] == ["Current SWAT certification"]
    assert poll["reminder_hours_before"] == [24, 4]
    assert poll["target_kinds"] == ["municipal"]
    stored = Poll.objects.get()
    assert stored.title == "Chicago: weekend support" and stored.requirements == [
        "Current SWAT certification"
    ]
    assert AuditEvent.objects.filter(action="poll.create", object_id=str(stored.pk)).exists()
    detail = coordinator_client.get(reverse("api:poll-detail", args=[stored.pk])).json()
    assert detail == poll


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"title": ""}, "title", "This field is required."),
        ({"deadline": "2001-01-01T00:00:00Z"}, "deadline", "The deadline must be in the future."),
        ({"deadline": "soon"}, "deadline", "Enter a valid date/time."),
        ({"purpose": "request"}, "requesting_person", "Say who requests assistance."),
        ({"destination_latitude": None}, "destination_latitude", "Give the destination's name"),
        ({"destination_latitude": 123}, "destination_latitude", "less than or equal to 90"),
        ({"reminder_hours_before": [0]}, "reminder_hours_before", "must be positive"),
        ({"reminder_hours_before": 24}, "reminder_hours_before", "Give a list of values."),
        ({"target_regions": [999999]}, "target_regions", "Select a valid choice."),
        ({"target_kinds": []}, "non_field_errors", "Choose whom to ask"),
        ({"target_regions": [2**70]}, "target_regions", "Select a valid choice."),
        ({"deadline": "9999-12-31T23:59:59-12:00"}, "deadline", "between the years 1900 and 9000"),
        ({"needed_by": "0001-01-01T00:00:00+05:00"}, "needed_by", "between the years"),
        ({"reminder_hours_before": [10**20]}, "reminder_hours_before", "At most 720 hours"),
        ({"escalate_after_hours": 2**31}, "escalate_after_hours", "At most 720 hours"),
    ],
)
def test_bad_polls_are_refused_with_the_compose_forms_messages(
    coordinator_client, change, field, message
):
    response = coordinator_client.post(
        reverse("api:poll-list"), compose(**change), "application/json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(message in m for m in errors[field]), errors
    assert Poll.objects.count() == 0


def test_a_deadline_with_an_offset_is_stored_in_utc(coordinator_client):
    body = compose(deadline="2030-06-01T20:00:00+14:00")
    response = coordinator_client.post(reverse("api:poll-list"), body, "application/json")
    assert response.status_code == 201
    assert Poll.objects.get().deadline.isoformat() == "2030-06-01T06:00:00+00:00"


def test_the_compose_page_refuses_a_deadline_it_could_not_store(coordinator_client):
    data = {"title": "x", "purpose": "planning", "situation": "emergency", "message": "m",
            "destination": "0", "target_kinds": ["municipal"],
            "deadline": "9999-12-31T23:59"}  # fmt: skip
    response = coordinator_client.post(reverse("surveys:poll-create"), data)
    assert response.status_code == 422
    assert "between the years 1900 and 9000" in response.text
    assert Poll.objects.count() == 0


def test_a_draft_is_edited_in_part_and_a_sent_poll_is_not(coordinator_client):
    poll = coordinator_client.post(reverse("api:poll-list"), compose(), "application/json").json()
    url = reverse("api:poll-detail", args=[poll["id"]])
    response = coordinator_client.patch(url, {"title": "Chicago: Saturday"}, "application/json")
    assert response.status_code == 200
    assert response.json()["title"] == "Chicago: Saturday"
    assert response.json()["requirements"] == ["Current SWAT certification"]  # kept
    Poll.objects.filter(pk=poll["id"]).update(state=Poll.State.OPEN)
    response = coordinator_client.patch(url, {"title": "Too late"}, "application/json")
    assert response.status_code == 409 and response.json()["code"] == "not_draft"
    assert Poll.objects.get().title == "Chicago: Saturday"


def test_send_remind_extend_close_through_the_api(coordinator_client):
    agency = AgencyFactory(kind="municipal")
    ContactFactory(agency=agency, role="primary")
    poll = coordinator_client.post(reverse("api:poll-list"), compose(), "application/json").json()
    send = reverse("api:poll-send", args=[poll["id"]])
    response = coordinator_client.post(send)
    assert response.status_code == 202
    assert response.json()["invitations"] == 1 and response.json()["poll"]["state"] == "open"
    assert coordinator_client.post(send).json()["code"] == "not_draft"  # twice sends once
    assert Invitation.objects.count() == 1
    Invitation.objects.update(state="sent", sent_at=timezone.now() - timedelta(hours=1))
    remind = coordinator_client.post(reverse("api:poll-remind", args=[poll["id"]]))
    assert remind.json() == {"reminded": 1}
    extend = reverse("api:poll-extend", args=[poll["id"]])
    assert coordinator_client.post(extend, {"deadline": "x"}, "application/json").status_code == 400
    later = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    response = coordinator_client.post(extend, {"deadline": later.isoformat()}, "application/json")
    assert response.status_code == 200
    assert Poll.objects.get().deadline == later
    earlier = {"deadline": (timezone.now() + timedelta(hours=2)).isoformat()}
    response = coordinator_client.post(extend, earlier, "application/json")
    assert response.status_code == 400 and "later than the current" in str(response.json())
    close = coordinator_client.post(reverse("api:poll-close", args=[poll["id"]]))
    assert close.status_code == 200 and close.json()["state"] == "closed"
    cancel = coordinator_client.post(reverse("api:poll-cancel", args=[poll["id"]]))
    assert cancel.status_code == 409 and cancel.json()["code"] == "not_open"


def test_a_cancelled_poll_says_who_cancelled_it(coordinator_client):
    invitation, _ = open_invitation()
    response = coordinator_client.post(reverse("api:poll-cancel", args=[invitation.poll_id]))
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    poll = Poll.objects.get(pk=invitation.poll_id)
    assert poll.cancelled_by.full_name == "Casey Coordinator"


def test_polls_filter_by_state_and_updated_since_and_order(coordinator_client):
    old = PollFactory(title="Old")
    Poll.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    open_poll = PollFactory(title="Open", state=Poll.State.OPEN, sent_at=timezone.now())
    url = reverse("api:poll-list")
    by_state = coordinator_client.get(url, {"state": "open"}).json()
    assert [p["id"] for p in by_state["results"]] == [open_poll.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = coordinator_client.get(url, {"updated_since": since}).json()
    assert [p["id"] for p in recent["results"]] == [open_poll.pk]
    ordered = coordinator_client.get(url, {"ordering": "title"}).json()
    assert [p["title"] for p in ordered["results"]] == ["Old", "Open"]
    bad = coordinator_client.get(url, {"state": "sleeping"})
    assert bad.status_code == 400 and "state" in bad.json()["errors"]
    bad = coordinator_client.get(url, {"updated_since": "yesterday"})
    assert bad.status_code == 400 and "updated_since" in bad.json()["errors"]


def test_the_readiness_figures_match_the_dashboard_and_carry_an_etag(
    client, clock, django_capture_on_commit_callbacks
):
    invitation, _ = open_invitation()
    poll = invitation.poll
    Reply.objects.create(
        poll=poll, agency=invitation.agency, decision="unavailable", decline_reason="Busy",
        created_at=timezone.now(), updated_at=timezone.now(),
    )  # fmt: skip
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    url = reverse("api:poll-readiness", args=[poll.pk])
    first = client.get(url, {"within": "all"})
    assert first.status_code == 200
    figures = first.json()
    expected = dashboards.poll_summary(poll=poll, within=None).as_json()
    assert figures["headline"] == expected["headline"]
    assert figures["headline"]["agencies_unavailable"] == 1
    assert figures["arrival_curve"] == expected["arrival_curve"]
    assert figures["stamp"] in first["ETag"]
    etag = first["ETag"]
    # Unchanged: 304 with no body, in a single small query.
    unchanged = client.get(url, {"within": "all"}, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged["ETag"] == etag
    # Another window is another representation.
    other = client.get(url, {"within": "60"}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other["ETag"] != etag
    # A new answer changes the tag at once (the counted activity is cached for a few seconds,
    # and an answer forgets it).
    second, _ = open_invitation(poll=poll)
    with django_capture_on_commit_callbacks(execute=True):
        replies.reply_submit(
            poll=poll, agency=second.agency, invitation=second, base_version=0, lines=[],
            answer={"decision": "unavailable", "decline_reason": "Flooding"}, confirm=False,
        )  # fmt: skip
    changed = client.get(url, {"within": "all"}, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["headline"]["agencies_unavailable"] == 2


def test_the_readiness_etag_holds_while_minutes_turn_and_changes_when_progress_moves(client, clock):
    """Nothing but the reply-progress series moves with the clock, and it gains a point only
    when its step turns: a client polling every few minutes keeps getting 304s until then."""
    invitation, _ = open_invitation()  # sent now, at the stopped clock
    poll = invitation.poll
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    url = reverse("api:poll-readiness", args=[poll.pk])
    first = client.get(url)
    assert first.status_code == 200
    etag, points = first["ETag"], len(first.json()["reply_progress"])
    for minutes in (1, 4, 9):  # minutes turn; the series (5-minute steps) does not move yet
        clock.move_to(poll.sent_at + timedelta(minutes=minutes, seconds=30), tick=False)
        later = client.get(url, headers={"If-None-Match": etag})
        assert later.status_code == 304, f"{minutes} min after sending"
    clock.move_to(poll.sent_at + timedelta(minutes=10, seconds=1), tick=False)
    moved = client.get(url, headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved["ETag"] != etag
    assert len(moved.json()["reply_progress"]) == points + 1
    # Past the deadline of a still-open poll the series stops growing, and so does the tag.
    clock.move_to(poll.deadline + timedelta(hours=1), tick=False)
    etag = client.get(url)["ETag"]
    clock.move_to(poll.deadline + timedelta(hours=5), tick=False)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_the_readiness_window_is_validated_and_a_draft_has_no_figures(client):
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    invitation, _ = open_invitation()
    response = client.get(reverse("api:poll-readiness", args=[invitation.poll_id]), {"within": -3})
    assert response.status_code == 400 and "within" in response.json()["errors"]
    draft = PollFactory()
    assert client.get(reverse("api:poll-readiness", args=[draft.pk])).status_code == 404


def test_standing_readiness_by_region_and_type(client):
    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    RegionFactory(name="Region 9")
    response = client.get(reverse("api:standing-readiness"), {"days": 90})
    assert response.status_code == 200
    body = response.json()
    assert body["days"] == 90 and set(body["total"]) == {
        "teams", "answered", "available", "conditional", "declined", "members"
    }  # fmt: skip
    assert client.get(reverse("api:standing-readiness"), {"days": 0}).status_code == 400
    assert client.get(reverse("api:standing-readiness"), {"days": "x"}).status_code == 400
