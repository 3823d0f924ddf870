"""Commander replies through the emailed link: the form, validation, versions, conflicts, dead
links, the confirmation email and the audit trail."""

import datetime
import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from readiness.models import AuditEvent
from surveys import chasing, replies, selectors
from surveys.models import Invitation, Poll, Reply, ReplyLine, ReplyVersion

from ..factories import SpecialTeamFactory, TeamTypeFactory
from .factories import open_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    """An open poll targeting SRTs; the agency has an SRT (12), an MFF (30) and a K9 team (4)."""
    srt, mff, k9 = (TeamTypeFactory(code=code) for code in ("swat", "mff", "k9"))
    invitation, token = open_invitation(travel_minutes=60)
    invitation.poll.target_team_types.set([srt])
    agency = invitation.agency
    teams = {
        "srt": SpecialTeamFactory(agency=agency, team_type=srt, members=12, name="North SRT"),
        "mff": SpecialTeamFactory(agency=agency, team_type=mff, members=30, name="North MFF"),
        "k9": SpecialTeamFactory(agency=agency, team_type=k9, members=4, name="North K9"),
    }
    return {"invitation": invitation, "token": token, "agency": agency, "teams": teams,
            "poll": invitation.poll, "url": reverse("surveys:reply", args=[token])}  # fmt: skip


def answer(setup, version=0, **overrides):
    """A complete 'available' answer for the SRT, as the browser posts it."""
    srt = setup["teams"]["srt"].pk
    data = {
        "version": version,
        "decision": "available",
        "authorised_by_name": "Dana Reyes",
        "authorised_by_rank": "Chief",
        f"team-{srt}-officers": 8,
        f"team-{srt}-vehicles": 3,
        f"team-{srt}-depart_minutes": 30,
        f"team-{srt}-travel_minutes": 55,
        f"team-{srt}-deploy_hours": 12,
    }
    for team in setup["teams"].values():
        data.setdefault(f"team-{team.pk}-travel_minutes", 60)
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def post(client, setup, data, capture=None):
    if capture is None:
        return client.post(setup["url"], data)
    with capture(execute=True):
        return client.post(setup["url"], data)


def test_the_link_shows_the_poll_and_the_agencys_teams_with_the_estimate(client, setup):
    page = client.get(setup["url"])
    assert page.status_code == 200
    text = page.text
    assert setup["poll"].title in text and setup["agency"].name in text
    assert "Answer by" in text and "left)" in text
    # Targeted SRT first and open; the other teams behind "Add your agency's other teams".
    srt, mff = setup["teams"]["srt"], setup["teams"]["mff"]
    assert text.index("North SRT") < text.index("Add your agency") < text.index("North MFF")
    assert f'name="team-{srt.pk}-travel_minutes" value="60"' in text
    assert f'max="{mff.members}"' in text
    assert "Authorised by (name)" in text and "Why not?" in text
    assert page["Cache-Control"].startswith("max-age=0")


def test_a_reply_is_saved_with_its_lines_and_arrival_and_confirmed_by_email(
    client, setup, smtp_sink, django_capture_on_commit_callbacks
):
    response = post(client, setup, answer(setup), django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response["Location"] == reverse("surveys:reply-done", args=[setup["token"]])
    reply = Reply.objects.get()
    assert (reply.agency, reply.poll, reply.decision) == (
        setup["agency"], setup["poll"], Reply.Decision.AVAILABLE,
    )  # fmt: skip
    assert (reply.officers, reply.earliest_arrival_minutes, reply.version) == (8, 85, 1)
    line = ReplyLine.objects.get()
    assert (line.team, line.officers, line.vehicles, line.deploy_hours) == (
        setup["teams"]["srt"], 8, 3, 12,
    )  # fmt: skip
    assert (line.depart_minutes, line.travel_minutes, line.arrival_minutes) == (30, 55, 85)
    assert line.poll == setup["poll"] and not line.travel_flagged
    setup["invitation"].refresh_from_db()
    assert setup["invitation"].replied_at is not None

    done = client.get(response["Location"])
    assert "your answer is recorded" in done.text and "Dana Reyes" in done.text
    assert "Change the answer" in done.text

    [mail] = smtp_sink.to(setup["invitation"].email)
    body = mail.message.get_content()
    assert setup["poll"].title in mail.message["Subject"]
    assert "Decision: Available" in body and "Authorised by: Dana Reyes, Chief" in body
    assert "North SRT: officers: 8" in body and "North SRT: arrive after (min): 85" in body
    # The link to change it: a fresh one (only links' hashes are kept), to the same form.
    [link] = re.findall(r"https?://\S+/r/[\w-]+/", body)
    assert setup["token"] not in body
    again = client.get(urlsplit(link).path)
    assert again.status_code == 200 and setup["agency"].name in again.text
    assert 'name="version" value="1"' in again.text
    version = ReplyVersion.objects.get()
    assert (version.confirmation, version.confirmation_claimed_at) == ("sent", None)


@pytest.mark.parametrize("down", ["broker", "cache"])
def test_an_answer_saved_while_the_queue_or_cache_is_down_is_answered_as_saved(
    client, setup, monkeypatch, django_capture_on_commit_callbacks, caplog, smtp_sink, down
):
    """The answer commits before its confirmation's run is queued and the dashboards' count is
    forgotten: a broker or cache that cannot be reached then is logged, not a 500 for an
    answer that was recorded (which its author would send again, or phone in). The
    confirmation stays due with the answer, and beat's next run sends it."""
    from celery import current_app
    from django.core.cache import cache
    from kombu.exceptions import OperationalError

    from readiness import cache as readiness_cache

    def refused(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    task = current_app.tasks["surveys.tasks.send_reply_confirmations"]
    cache.delete(f"jobs:queued:{task.name}")  # no run queued already
    monkeypatch.setattr(task, "apply_async", refused)  # the broker is down (or not reached)
    if down == "cache":
        monkeypatch.setattr(readiness_cache, "forget_and_add", refused)
        monkeypatch.setattr(cache, "delete", refused)
        monkeypatch.setattr(cache, "delete_many", refused)
    current_app.conf.task_always_eager = False  # through the broker (conftest restores it)
    response = post(client, setup, answer(setup), django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert Reply.objects.get().version == 1 and ReplyVersion.objects.count() == 1
    logged = [r.getMessage() for r in caplog.records if "on_commit" in r.getMessage()]
    assert len(logged) == 1 and "Connection refused" in logged[0]
    assert setup["token"] not in caplog.text
    assert ReplyVersion.objects.get().confirmation == "due" and not smtp_sink.messages
    monkeypatch.undo()
    task.apply()  # as beat runs it every minute
    assert ReplyVersion.objects.get().confirmation == "sent"
    assert len(smtp_sink.to(setup["invitation"].email)) == 1


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"officers": -1}, "officers", "Cannot be negative."),
        ({"officers": 13}, "officers", "At most 12: the team has 12 members."),
        ({"officers": "lots"}, "officers", "Give a whole number of officers."),
        ({"depart_minutes": -5}, "depart_minutes", "Cannot be negative."),
        ({"depart_minutes": 4321}, "depart_minutes", "At most 4320 minutes (72 hours)."),
        ({"travel_minutes": 100000}, "travel_minutes", "At most 4320 minutes (72 hours)."),
        ({"depart_minutes": None}, "depart_minutes", "Required when officers are available."),
        ({"vehicles": -2}, "vehicles", "Cannot be negative."),
        ({"deploy_hours": 0}, "deploy_hours", "At least 1 hour."),
    ],
)
def test_bad_team_figures_are_explained_beside_the_field_and_nothing_is_saved(
    client, setup, change, field, message
):
    srt = setup["teams"]["srt"].pk
    data = answer(setup, **{f"team-{srt}-{k}": v for k, v in change.items()})
    response = post(client, setup, data)
    assert response.status_code == 422
    assert "Nothing was saved" in response.text
    assert f'href="#id_team-{srt}-{field}"' in response.text  # the summary links to the field
    assert message in response.text
    assert Reply.objects.count() == 0 and ReplyVersion.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="reply.").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"decision": "unavailable"}, "Say why your agency cannot send officers."),
        ({"decision": None}, "Choose available, available with conditions or unavailable."),
        ({"decision": "maybe"}, "Select a valid choice."),
        ({"authorised_by_name": ""}, "Name who authorises sending these officers."),
        ({"decision": "conditional"}, "Choose at least one condition, or describe it."),
        ({"conditions": ["emergencies_only"]}, "choose “Available with conditions”"),
        (
            {"decision": "conditional", "conditions": ["other"]},
            "Describe the “Other” condition.",
        ),
        ({"version": None}, "This field is required."),
    ],
)
def test_inconsistent_answers_are_refused_with_a_reason(client, setup, overrides, message):
    response = post(client, setup, answer(setup, **overrides))
    assert response.status_code == 422
    assert message in response.text
    assert Reply.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"decision": "unavailable", "decline_reason": "x" * 3500}, "decline_reason",
         "Ensure this value has at most 2000 characters (it has 3500)."),
        ({"authorised_by_name": "n" * 500}, "authorised_by_name",
         "Ensure this value has at most 150 characters (it has 500)."),
        ({"decision": "conditional", "conditions": ["other"], "conditions_text": "c" * 3000},
         "conditions_text", "Ensure this value has at most 2000 characters (it has 3000)."),
    ],
)  # fmt: skip
def test_one_clear_error_per_field(client, setup, overrides, field, expected):
    response = post(client, setup, answer(setup, **overrides))
    assert response.status_code == 422
    errors = response.context["submission"].form.errors
    assert errors[field] == [expected]  # not also "say why" or "name who authorises"
    assert not Reply.objects.exists()


def test_available_needs_officers_on_some_team(client, setup):
    srt = setup["teams"]["srt"].pk
    response = post(client, setup, answer(setup, **{f"team-{srt}-officers": 0}))
    assert response.status_code == 422
    assert "Give the officers available for at least one team" in response.text
    assert Reply.objects.count() == 0


def test_a_team_of_another_agency_posted_by_hand_is_refused(client, setup):
    foreign = SpecialTeamFactory(members=50)  # another agency's team
    data = answer(setup, **{f"team-{foreign.pk}-officers": 40,
                            f"team-{foreign.pk}-depart_minutes": 5,
                            f"team-{foreign.pk}-travel_minutes": 5})  # fmt: skip
    response = post(client, setup, data)
    assert response.status_code == 422
    assert f"Only {setup['agency'].name}&#x27;s own teams can be answered for" in response.text
    assert Reply.objects.count() == 0 and ReplyLine.objects.count() == 0


def test_a_decline_keeps_the_reason_and_no_team_lines(client, setup):
    data = answer(setup, decision="unavailable", decline_reason="Committed to the state fair.",
                  authorised_by_name="", authorised_by_rank="")  # fmt: skip
    assert post(client, setup, data).status_code == 302
    reply = Reply.objects.get()
    assert (
        reply.decision == "unavailable" and reply.decline_reason == "Committed to the state fair."
    )
    assert reply.officers == 0 and not reply.lines.exists()


def test_conditions_and_other_teams_are_recorded(client, setup):
    mff = setup["teams"]["mff"].pk
    data = answer(
        setup, decision="conditional", conditions=["emergencies_only", "other"],
        conditions_text="Only with our own radios.",
        **{f"team-{mff}-officers": 20, f"team-{mff}-depart_minutes": 60,
           f"team-{mff}-travel_minutes": 70},
    )  # fmt: skip
    assert post(client, setup, data).status_code == 302
    reply = Reply.objects.get()
    assert reply.conditions == ["emergencies_only", "other"]
    assert reply.officers == 28 and reply.earliest_arrival_minutes == 85
    assert sorted(reply.lines.values_list("officers", "arrival_minutes")) == [(8, 85), (20, 130)]


def test_travel_far_below_the_estimate_is_flagged_not_refused(client, setup, coordinator):
    srt = setup["teams"]["srt"].pk
    response = post(client, setup, answer(setup, **{f"team-{srt}-travel_minutes": 10}))
    assert response.status_code == 302
    reply = Reply.objects.get()
    assert reply.travel_flagged and reply.lines.get().travel_flagged
    client.force_login(coordinator)
    page = client.get(reverse("surveys:poll-detail", args=[setup["poll"].pk]))
    assert "travel time far below estimate" in page.text
    history = client.get(reverse("surveys:reply-history", args=[setup["poll"].pk,
                                                                 setup["agency"].pk]))  # fmt: skip
    assert "far below the 60 min estimate" in history.text


def test_changes_are_versions_with_who_when_and_what_changed(client, setup, coordinator):
    assert post(client, setup, answer(setup)).status_code == 302
    srt = setup["teams"]["srt"].pk
    changed = answer(setup, version=1, note="Bringing the armoured vehicle.",
                     **{f"team-{srt}-officers": 10})  # fmt: skip
    assert post(client, setup, changed).status_code == 302
    # The same answer again is not a new version.
    assert post(client, setup, {**changed, "version": 2}).status_code == 302
    reply = Reply.objects.get()
    assert reply.version == 2 and reply.officers == 10
    v1, v2 = ReplyVersion.objects.order_by("number")
    assert v1.data["lines"][0]["officers"] == 8 and v2.data["lines"][0]["officers"] == 10
    assert v2.changes == {
        "North SRT: officers": [8, 10],
        "Note": [None, "Bringing the armoured vehicle."],
    }
    assert v2.author_email == setup["invitation"].email and v2.invitation == setup["invitation"]
    actions = list(
        AuditEvent.objects.filter(action__startswith="reply.").values_list("action", flat=True)
    )
    assert sorted(actions) == ["reply.create", "reply.update"]
    update = AuditEvent.objects.get(action="reply.update")
    assert update.actor is None and update.actor_email == setup["invitation"].email
    assert update.changes["North SRT: officers"] == [8, 10] and update.ip == "127.0.0.1"

    client.force_login(coordinator)
    page = client.get(reverse("surveys:reply-history", args=[setup["poll"].pk, setup["agency"].pk]))
    assert page.status_code == 200
    assert "History (2 versions)" in page.text
    assert "North SRT: officers</strong>: 8 → 10" in page.text


def test_a_changed_answer_replaces_its_lines_and_keeps_no_old_one(client, setup):
    """Lines are the answer as it stands: a team dropped from the answer leaves no line behind,
    and the figures add up the new lines only."""
    from readiness.dashboards import figures as dashboards

    srt, k9 = setup["teams"]["srt"].pk, setup["teams"]["k9"].pk
    first = answer(setup, **{f"team-{k9}-officers": 2, f"team-{k9}-depart_minutes": 10})
    assert post(client, setup, first).status_code == 302
    assert sorted(ReplyLine.objects.values_list("team_id", "officers")) == sorted(
        [(srt, 8), (k9, 2)]
    )
    changed = answer(setup, version=1, **{f"team-{srt}-officers": 10})
    assert post(client, setup, changed).status_code == 302
    reply = Reply.objects.get()
    assert list(reply.lines.values_list("team_id", "officers")) == [(srt, 10)]
    assert ReplyLine.objects.filter(poll=setup["poll"]).count() == 1
    assert reply.officers == 10
    summary = dashboards.poll_summary(poll=setup["poll"], within=None)
    assert summary.as_json()["headline"]["officers_available"] == 10
    # Declined: no line at all.
    declined = {"version": 2, "decision": "unavailable", "decline_reason": "Storm duty.",
                "authorised_by_name": "Dana Reyes", "authorised_by_rank": "Chief"}  # fmt: skip
    assert post(client, setup, declined).status_code == 302
    assert not ReplyLine.objects.filter(poll=setup["poll"]).exists()


def test_a_stale_form_is_a_conflict_that_shows_the_current_answer(client, setup):
    # Two people opened the form before either answered (both at version 0).
    assert post(client, setup, answer(setup)).status_code == 302
    srt = setup["teams"]["srt"].pk
    second = answer(setup, version=0, **{f"team-{srt}-officers": 2})
    response = post(client, setup, second)
    assert response.status_code == 409
    assert "This answer changed while you were editing" in response.text
    assert "Nothing of yours was saved" in response.text
    assert f'name="team-{srt}-officers" value="2"' in response.text  # what they typed stays
    assert 'name="version" value="1"' in response.text  # resubmitting now replaces version 1
    assert Reply.objects.get().officers == 8 and ReplyVersion.objects.count() == 1
    resubmitted = post(client, setup, {**second, "version": 1})
    assert resubmitted.status_code == 302
    assert Reply.objects.get().officers == 2 and ReplyVersion.objects.count() == 2


def test_free_text_is_escaped_everywhere_it_is_shown(
    client, setup, coordinator, smtp_sink, django_capture_on_commit_callbacks
):
    script = "<script>alert('x')</script>"
    data = answer(setup, decision="conditional", conditions=["other"],
                  conditions_text=script, note=f"<b>{script}</b>",
                  authorised_by_name=script)  # fmt: skip
    assert post(client, setup, data, django_capture_on_commit_callbacks).status_code == 302
    pages = [client.get(reverse("surveys:reply-done", args=[setup["token"]])).text]
    pages.append(client.get(setup["url"]).text)
    client.force_login(coordinator)
    poll = setup["poll"]
    pages.append(
        client.get(reverse("surveys:reply-history", args=[poll.pk, setup["agency"].pk])).text
    )
    pages.append(client.get(reverse("surveys:poll-detail", args=[poll.pk])).text)
    pages.append(client.get(reverse("surveys:reply-feed", args=[poll.pk])).text)
    for page in pages:
        assert "<script>alert" not in page and "<b><script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in pages[0]
    # The email is plain text: the words arrive as typed, nothing renders them as HTML.
    [mail] = smtp_sink.messages
    assert mail.message.get_content_type() == "text/plain"


@pytest.mark.parametrize(
    ("spoil", "status", "words"),
    [
        (
            lambda inv: Poll.objects.filter(pk=inv.poll_id).update(
                state="closed", closed_at=timezone.now()
            ),
            410,
            "This poll is closed",
        ),
        (
            lambda inv: Poll.objects.filter(pk=inv.poll_id).update(
                deadline=timezone.now() - datetime.timedelta(minutes=1)
            ),
            410,
            "This poll is closed",
        ),
        (
            lambda inv: Poll.objects.filter(pk=inv.poll_id).update(
                state="cancelled", cancelled_at=timezone.now()
            ),
            410,
            "This poll was cancelled",
        ),
        (
            lambda inv: Invitation.objects.filter(pk=inv.pk).update(revoked_at=timezone.now()),
            410,
            "This link was withdrawn",
        ),
        (
            lambda inv: Invitation.objects.filter(pk=inv.pk).update(token_hash="0" * 64),
            404,
            "This link is not valid",
        ),
    ],
)
def test_dead_links_say_what_happened_and_save_nothing(client, setup, spoil, status, words):
    spoil(setup["invitation"])
    for response in (client.get(setup["url"]), post(client, setup, answer(setup))):
        assert response.status_code == status
        assert words in response.text and "Nothing" in response.text
    assert Reply.objects.count() == 0


def test_an_answer_given_before_closing_stays_and_cannot_change(client, setup):
    assert post(client, setup, answer(setup)).status_code == 302
    chasing.poll_close(poll=setup["poll"])
    srt = setup["teams"]["srt"].pk
    response = post(client, setup, answer(setup, version=1, **{f"team-{srt}-officers": 1}))
    assert response.status_code == 410
    assert "any answer given before stays as it was" in response.text
    assert Reply.objects.get().officers == 8


def test_closing_while_the_form_is_open_refuses_the_save(client, setup, monkeypatch):
    """The poll closes between the page's check and the save: the save refuses it (on
    PostgreSQL in the statement that would write it, elsewhere in its transaction)."""
    real = replies.reply_refusal
    calls = []

    def closes_after_the_pages_check(poll, invitation=None, **kw):
        reason = real(poll, invitation, **kw)
        if not calls:  # the page's check passed; the coordinator closes the poll now
            calls.append(1)
            Poll.objects.filter(pk=poll.pk).update(state="closed")
        return reason

    monkeypatch.setattr(replies, "reply_refusal", closes_after_the_pages_check)
    response = post(client, setup, answer(setup))
    assert response.status_code == 410 and Reply.objects.count() == 0


def test_guessing_is_rate_limited_and_valid_links_keep_working(client, setup, settings):
    settings.REPLY_LINK_RATE_LIMIT = 3
    tampered = setup["token"][:-2] + ("AA" if not setup["token"].endswith("AA") else "BB")
    for _ in range(3):
        assert client.get(reverse("surveys:reply", args=[tampered])).status_code == 404
    limited = client.get(reverse("surveys:reply", args=[tampered]))
    assert limited.status_code == 429 and "Too many attempts" in limited.text
    other_guess = client.post(reverse("surveys:reply", args=["another-guess-" + "y" * 20]), {})
    assert other_guess.status_code == 429  # a guesser learns nothing more from this address
    # Responders behind the same address (a carrier NAT, an agency's proxy) are not locked
    # out: a valid link still opens, and an answer through it is saved.
    assert client.get(setup["url"]).status_code == 200
    assert post(client, setup, answer(setup)).status_code == 302
    assert Reply.objects.count() == 1
    # Another address may still make its own mistakes.
    assert (
        client.get(reverse("surveys:reply", args=[tampered]), REMOTE_ADDR="10.0.0.9").status_code
        == 404
    )


def test_a_link_for_agency_a_cannot_read_or_write_agency_b(client, setup):
    other, other_token = open_invitation(poll=setup["poll"])
    b_team = SpecialTeamFactory(agency=other.agency, members=40, name="South SRT")
    # B answers through its own link.
    b_data = {"version": 0, "decision": "unavailable", "decline_reason": "Short-staffed.",
              f"team-{b_team.pk}-travel_minutes": 60}  # fmt: skip
    assert client.post(reverse("surveys:reply", args=[other_token]), b_data).status_code == 302
    # A's link shows nothing of B's answer or teams.
    page = client.get(setup["url"]).text
    assert "South SRT" not in page and "Short-staffed" not in page
    assert "Your agency answered" not in page
    # A posting B's team is refused; B's answer is untouched.
    data = answer(setup, **{f"team-{b_team.pk}-officers": 1, f"team-{b_team.pk}-depart_minutes": 1})
    assert post(client, setup, data).status_code == 422
    assert Reply.objects.get(agency=other.agency).decision == "unavailable"
    assert not Reply.objects.filter(agency=setup["agency"]).exists()


def test_the_coordinators_feed_and_table_show_answers(client, setup, coordinator):
    assert post(client, setup, answer(setup)).status_code == 302
    client.force_login(coordinator)
    poll = setup["poll"]
    page = client.get(reverse("surveys:poll-detail", args=[poll.pk])).text
    assert "Answers: 1 of 1 agencies" in page
    assert f"{setup['agency'].name}</a> answered <strong>available</strong>, 8 officers" in page
    assert f'hx-get="{reverse("surveys:reply-feed", args=[poll.pk])}"' in page
    feed = client.get(reverse("surveys:reply-feed", args=[poll.pk]))
    assert feed.status_code == 200 and feed.text.lstrip().startswith('<section id="feed"')
    listing = client.get(reverse("surveys:poll-list")).text
    assert ">1 of 1</td>" in listing  # answered of asked


@pytest.mark.parametrize("extra_teams", [0, 25])
def test_the_form_and_a_save_take_as_many_queries_whatever_the_teams(
    client, setup, extra_teams, django_assert_max_num_queries
):
    for _ in range(extra_teams):
        SpecialTeamFactory(agency=setup["agency"], members=10)
    # the first fetches the poll's team targets; one its required roster qualifications
    with django_assert_max_num_queries(6):
        assert client.get(setup["url"]).status_code == 200
    data = answer(setup)
    for team in setup["agency"].teams.all():
        data.setdefault(f"team-{team.pk}-travel_minutes", 60)
    with django_assert_max_num_queries(15):
        assert post(client, setup, data).status_code == 302
    with django_assert_max_num_queries(7):
        assert client.get(reverse("surveys:reply-done", args=[setup["token"]])).status_code == 200


def test_a_double_submit_of_the_same_answer_is_saved_once_without_a_conflict(client, setup):
    data = answer(setup)
    first, second = post(client, setup, data), post(client, setup, data)  # both from version 0
    assert first.status_code == second.status_code == 302
    assert ReplyVersion.objects.count() == 1 and Reply.objects.get().version == 1


def test_an_unchanged_answer_says_nothing_changed_and_sends_nothing(
    client, setup, django_capture_on_commit_callbacks
):
    from django.core import mail

    data = answer(setup)
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, setup, data)
    assert len(mail.outbox) == 1 and "unchanged" not in first["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        again = post(client, setup, {**data, "version": 1})
    assert again.status_code == 302 and again["Location"].endswith("?unchanged=1")
    done = client.get(again["Location"]).text
    assert "Nothing changed" in done and "No new confirmation email was sent" in done
    assert "confirmation email is on its way" not in done
    assert "answer of <strong>available</strong>, 8 officers (version 1" in done
    assert len(mail.outbox) == 1


def test_every_input_has_a_visible_label_and_help_text(client, setup):
    from html.parser import HTMLParser

    class Inputs(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inputs, self.labels, self.ids = [], set(), set()

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if "id" in attrs:
                self.ids.add(attrs["id"])
            if tag == "label" and "for" in attrs:
                self.labels.add(attrs["for"])
            if tag in ("input", "textarea", "select") and attrs.get("type") != "hidden":
                self.inputs.append(attrs)

    parser = Inputs()
    parser.feed(client.get(setup["url"]).text)
    named = [i for i in parser.inputs if i.get("type") not in ("radio", "checkbox")]
    assert len(named) > 15
    for field in named:
        assert field["id"] in parser.labels, field["name"]
        assert field.get("aria-describedby") in parser.ids, field["name"]  # its help text


def test_a_team_made_inactive_after_the_answer_stays_on_the_form_with_its_line(client, setup):
    """The form lists the agency's active teams and any already in its answer: a team retired
    from the registry after the answer keeps its line, and the answer can still be changed."""
    assert post(client, setup, answer(setup)).status_code == 302
    srt = setup["teams"]["srt"]
    srt.active = False
    srt.save()
    form = client.get(setup["url"])
    assert form.status_code == 200
    assert f'name="team-{srt.pk}-officers"' in form.text and 'value="8"' in form.text
    assert f'name="team-{setup["teams"]["k9"].pk}-officers"' in form.text  # the active ones too
    changed = answer(setup, version=1, **{f"team-{srt.pk}-officers": 6})
    assert post(client, setup, changed).status_code == 302
    assert Reply.objects.get().lines.get(team=srt).officers == 6


def test_an_answer_by_link_reads_only_what_it_saves_and_a_mistake_loads_the_rest_at_once(
    client, setup, deferred_loads
):
    """The link's POST loads 19 of its invitation's, poll's, agency's and contact's 100 columns
    and reads no other: no field is fetched afterwards. The page shown again for a mistake
    reads the rest of each object it shows in one query, not one per field."""
    fetched = deferred_loads  # the objects whose deferred fields were loaded
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert post(client, setup, answer(setup)).status_code == 302
    # The link's lookup, the poll's targets (three, once per poll and process), the teams and
    # the answer's statement; SQLite's general path locks and writes row by row. A related
    # object loaded on the way would add one.
    assert len(queries) <= (6 if connection.vendor == "postgresql" else 13)
    lookup = str(selectors._BY_TOKEN.queryset("x").query)  # (EXECUTEd by name on PostgreSQL)
    assert '"surveys_poll"."purpose"' not in lookup and '"surveys_poll"."state"' in lookup
    assert fetched == []
    assert Reply.objects.get().version == 1

    mistake = post(client, setup, answer(setup, version=1, authorised_by_name=""))
    assert mistake.status_code == 422 and setup["poll"].message in mistake.text
    assert setup["agency"].name in mistake.text
    assert len(fetched) == len(set(fetched)) and "Poll" in fetched  # one load per object


def test_a_first_answer_reads_nothing_stored_and_still_meets_one_saved_meanwhile(client, setup):
    """A form built when nothing was stored (version 0) is saved without reading the stored
    answer: its insert finds one saved meanwhile, and the page says so as before."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert post(client, setup, answer(setup)).status_code == 302
    assert not [q for q in queries if 'FROM "surveys_reply"' in q["sql"]]
    assert Reply.objects.get().version == 1
    srt = setup["teams"]["srt"].pk
    stale = post(client, setup, answer(setup, version=0, **{f"team-{srt}-officers": 3}))
    assert stale.status_code == 409 and 'name="version" value="1"' in stale.text
    assert Reply.objects.get().officers == 8 and ReplyVersion.objects.count() == 1


def test_a_stale_first_answer_naming_a_team_retired_since_is_a_conflict(client, setup):
    """The form's teams came from before the answer: one retired since is the stored
    answer's, not another agency's, and the page is the conflict with the stored answer."""
    assert post(client, setup, answer(setup)).status_code == 302
    srt = setup["teams"]["srt"]
    srt.active = False
    srt.save()
    stale = post(client, setup, answer(setup, version=0, **{f"team-{srt.pk}-officers": 5}))
    assert stale.status_code == 409
    assert "This answer changed while you were editing" in stale.text
    assert "own teams can be answered" not in stale.text  # not refused as another agency's
    assert f'name="team-{srt.pk}-officers" value="5"' in stale.text
    again = post(client, setup, answer(setup))  # the same answer again, from version 0
    assert again.status_code == 302 and again.url.endswith("?unchanged=1")
    assert ReplyVersion.objects.count() == 1


def test_a_first_answer_with_a_mistake_shows_the_answer_stored_meanwhile(client, setup):
    """A form built before anyone answered, posted with a mistake after someone did: the page
    explains the mistake and shows the stored answer (read again), and nothing is saved."""
    assert post(client, setup, answer(setup)).status_code == 302
    mistaken = post(client, setup, answer(setup, version=0, authorised_by_name=""))
    assert mistaken.status_code == 422
    assert "Name who authorises sending these officers." in mistaken.text
    assert mistaken.context["reply"] == Reply.objects.get()
    assert ReplyVersion.objects.count() == 1
