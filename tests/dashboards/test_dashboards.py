"""The readiness dashboards, checked figure by figure against hand-computed answers.

The world: poll P asks five agencies in two regions for SWAT officers (need 20 by two hours
after sending; requirements stated). A answers, then changes its answer (only the second version
counts); B comes with conditions; C declines; D is available but far away; E never answers.
A cancelled poll Q holds a bigger answer from A that must count nowhere but on Q itself.
"""

import csv
import datetime
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from agencies.models import Region, TeamType
from readiness.dashboards import figures as dashboards
from readiness.dashboards import views as dashboard_views
from surveys import replies
from surveys.models import Invitation, Poll, Reply
from tests.factories import AgencyFactory, ContactFactory, RegionFactory, SpecialTeamFactory
from tests.surveys.factories import PollFactory, open_invitation

MIN = datetime.timedelta(minutes=1)


def answer(invitation, decision, lines=(), *, base=0, at, conditions=(), text="", reason=""):
    """Save an answer through the service the reply form uses, at a given moment."""
    return replies.reply_submit(
        poll=invitation.poll,
        agency=invitation.agency,
        answer={
            "decision": decision,
            "authorised_by_name": "Pat Chief",
            "authorised_by_rank": "",
            "conditions": list(conditions),
            "conditions_text": text,
            "decline_reason": reason,
            "note": "",
        },
        lines=[
            {
                "team": team,
                "estimate": 60,
                "officers": officers,
                "vehicles": None,
                "depart_minutes": depart,
                "travel_minutes": travel,
                "deploy_hours": None,
                "officers_qualified": qualified,
            }
            for team, officers, depart, travel, qualified in lines
        ],
        base_version=base,
        invitation=invitation,
        confirm=False,
        now=at,
    )


@pytest.fixture
def world(db, coordinator):
    swat, mff = TeamType.objects.get(code="swat"), TeamType.objects.get(code="mff")
    north, south = RegionFactory(name="North"), RegionFactory(name="South")
    agencies = {
        name: AgencyFactory(name=f"{name} Police", region=region)
        for name, region in (("A", north), ("B", north), ("C", south), ("D", south), ("E", south))
    }
    teams = {
        "A-SWAT": SpecialTeamFactory(agency=agencies["A"], team_type=swat, members=30),
        "A-MFF": SpecialTeamFactory(agency=agencies["A"], team_type=mff, level=1, members=40),
        "B-SWAT": SpecialTeamFactory(agency=agencies["B"], team_type=swat, members=20),
        "C-MFF": SpecialTeamFactory(agency=agencies["C"], team_type=mff, level=1, members=30),
        "D-SWAT": SpecialTeamFactory(agency=agencies["D"], team_type=swat, members=25),
        "E-SWAT": SpecialTeamFactory(agency=agencies["E"], team_type=swat, members=20),
    }
    now = timezone.now()
    t0 = now - 240 * MIN
    poll = PollFactory(
        title="Chicago critical incidents",
        state=Poll.State.OPEN,
        sent_at=t0,
        deadline=t0 + datetime.timedelta(days=1),
        officers_needed=20,
        needed_team_type=swat,
        needed_by=t0 + 120 * MIN,
        requirements=["State SWAT certification"],
        created_by=coordinator,
    )
    inv = {name: open_invitation(agency=a, poll=poll)[0] for name, a in agencies.items()}
    alternate = ContactFactory(agency=agencies["E"])
    Invitation.objects.create(
        poll=poll,
        agency=agencies["E"],
        contact=alternate,
        email=alternate.email,
        distance_km=50,
        travel_minutes=40,
        state=Invitation.State.SENT,
        is_escalation=True,
    )
    Invitation.objects.filter(pk=inv["E"].pk).update(
        reminders_sent=2, last_reminded_at=now - 10 * MIN, escalated_at=now - 5 * MIN
    )
    # A: first 5 SWAT officers; then 10 SWAT and 20 MFF. Only the second version counts.
    answer(inv["A"], "available", [(teams["A-SWAT"], 5, 20, 40, 5)], at=t0 + 30 * MIN)
    answer(
        inv["A"],
        "available",
        [(teams["A-SWAT"], 10, 20, 40, 8), (teams["A-MFF"], 20, 60, 90, 20)],
        base=1,
        at=t0 + 90 * MIN,
    )
    answer(
        inv["B"],
        "conditional",
        [(teams["B-SWAT"], 12, 30, 75, 12)],
        at=t0 + 45 * MIN,
        conditions=["emergencies_only", "other"],
        text="Daylight only",
    )
    answer(inv["C"], "unavailable", at=t0 + 50 * MIN, reason="Court duty all week")
    answer(inv["D"], "available", [(teams["D-SWAT"], 6, 200, 400, 0)], at=t0 + 200 * MIN)
    # Q: cancelled after A offered 25 SWAT officers arriving in 30 minutes.
    cancelled = PollFactory(
        title="Stood down", state=Poll.State.OPEN, sent_at=t0, created_by=coordinator
    )
    q_inv, _ = open_invitation(agency=agencies["A"], poll=cancelled)
    answer(q_inv, "available", [(teams["A-SWAT"], 25, 10, 20, None)], at=now - MIN)
    Poll.objects.filter(pk=cancelled.pk).update(state=Poll.State.CANCELLED, cancelled_at=now)
    return {
        "poll": poll,
        "cancelled": cancelled,
        "now": now,
        "agencies": agencies,
        "inv": inv,
        "teams": teams,
        "t0": t0,
    }


def summary_of(world, within="need"):
    poll = Poll.objects.get(pk=world["poll"].pk)
    if within == "need":
        within = dashboards.need_deadline_minutes(poll)
    return dashboards.poll_summary(poll=poll, within=within, now=world["now"])


def test_the_need_deadline_is_minutes_after_sending(world):
    assert dashboards.need_deadline_minutes(world["poll"]) == 120


def test_headline_within_the_need_deadline(world):
    s = summary_of(world)
    assert (s.asked, s.replied, round(s.reply_rate, 2)) == (5, 4, 0.8)
    # D said yes but arrives after 10 hours: not available within 2 h, counted as too late.
    assert (s.available, s.conditional, s.unavailable, s.late) == (1, 1, 1, 1)
    assert (s.officers_available, s.officers_conditional) == (10, 12)  # A's MFF arrives at 2.5 h
    assert (s.qualified_available, s.qualified_conditional) == (8, 12)


def test_headline_at_any_time(world):
    s = summary_of(world, within=None)
    assert (s.available, s.conditional, s.unavailable, s.late) == (2, 1, 1, 0)
    assert (s.officers_available, s.officers_conditional) == (36, 12)
    assert (s.qualified_available, s.qualified_conditional) == (28, 12)


def test_arrival_curve_in_fifteen_minute_steps(world):
    curve = summary_of(world).curve
    assert len(curve) == 34  # 0, 15, ... 480 minutes, and later
    by = {p.minutes: (p.available, p.everyone) for p in curve}
    assert by[0] == by[45] == (0, 0)
    assert by[60] == by[90] == (10, 10)  # A's SWAT at 60
    assert by[105] == (10, 22)  # B's conditional SWAT at 105
    assert by[150] == by[480] == (30, 42)  # A's MFF at 150
    assert by[None] == (36, 48)  # D at 600 minutes: later
    assert (curve[-1].qualified_available, curve[-1].qualified_everyone) == (28, 40)


def test_need_is_met_with_conditions_only(world):
    need = summary_of(world).need
    assert (need.officers, need.team_type, need.deadline_minutes) == (
        20,
        "SWAT / Special Response Team",
        120,
    )
    assert need.met_available_at is None  # SWAT without conditions: 10, then 16 (later)
    assert need.met_everyone_at == 105
    assert (need.available, need.everyone) == (10, 22)
    assert (need.shortfall_available, need.shortfall_everyone) == (10, 0)
    later = summary_of(world, within=None).need
    assert (later.available, later.everyone, later.shortfall_available) == (16, 28, 4)


def test_breakdown_by_team_type_and_level(world):
    rows = summary_of(world, within=None).by_type
    assert [
        (
            r["team_type"],
            r["level"],
            r["teams"],
            r["agencies"],
            r["available"],
            r["conditional"],
            r["qualified"],
            r["earliest_minutes"],
        )
        for r in rows
    ] == [
        ("SWAT / Special Response Team", 2, 3, 3, 16, 12, 20, 60),
        ("Mobile Field Force", 1, 1, 1, 20, 0, 20, 150),
    ]
    within = summary_of(world).by_type
    assert [(r["teams"], r["available"], r["conditional"]) for r in within] == [(2, 10, 12)]


def test_breakdown_by_region(world):
    rows = {r["region"]: r for r in summary_of(world, within=None).by_region}
    assert rows["North"] == {
        "region": "North",
        "asked": 2,
        "replied": 2,
        "available": 1,
        "conditional": 1,
        "unavailable": 0,
        "officers_available": 30,
        "officers_conditional": 12,
    }
    assert rows["South"] == {
        "region": "South",
        "asked": 3,
        "replied": 2,
        "available": 1,
        "conditional": 0,
        "unavailable": 1,
        "officers_available": 6,
        "officers_conditional": 0,
    }
    within = {r["region"]: r for r in summary_of(world).by_region}
    assert (within["South"]["available"], within["South"]["officers_available"]) == (0, 0)
    assert (within["North"]["officers_available"], within["North"]["officers_conditional"]) == (
        10,
        12,
    )


def test_an_answer_counts_for_its_team_as_it_was_when_it_was_given(
    client, coordinator, world, django_capture_on_commit_callbacks
):
    """The figures group by what each team line copied when the answer was saved: a team
    retyped later counts where it was answered until the agency answers again; the answers
    table, the CSV and the API say the same."""
    swat = world["teams"]["B-SWAT"]
    swat.team_type, swat.level = TeamType.objects.get(code="mff"), 1
    swat.save()
    types = {(r["team_type"], r["level"]): r for r in summary_of(world, within=None).by_type}
    assert types[("SWAT / Special Response Team", 2)]["conditional"] == 12
    client.force_login(coordinator)
    page = client.get(reverse("poll-dashboard", args=[world["poll"].pk]), {"within": "all"})
    assert ">SWAT / Special Response Team T2: 12, arrives 1 h 45 min<" in page.text
    # B answers again: its new version counts where its team is now (the page's cached
    # figures are forgotten as the answer commits).
    with django_capture_on_commit_callbacks(execute=True):
        answer(world["inv"]["B"], "conditional", [(swat, 11, 30, 75, 11)], base=1,
               at=world["now"], conditions=["emergencies_only"])  # fmt: skip
    types = {(r["team_type"], r["level"]): r for r in summary_of(world, within=None).by_type}
    assert types[("Mobile Field Force", 1)]["conditional"] == 11
    assert types[("SWAT / Special Response Team", 2)]["conditional"] == 0
    # The curve and the need read the copies too: B's 11 are no longer SWAT officers.
    assert summary_of(world, within=None).need.everyone == 16
    page = client.get(reverse("poll-dashboard", args=[world["poll"].pk]), {"within": "all"})
    assert ">Mobile Field Force T1: 11, arrives 1 h 45 min<" in page.text
    # Regions are the agencies' own, now, as the asked and answered counts beside them.
    b = world["agencies"]["B"]
    b.region = Region.objects.get(name="South")
    b.save()
    rows = {r["region"]: r for r in summary_of(world, within=None).by_region}
    assert (rows["North"]["officers_conditional"], rows["South"]["officers_conditional"]) == (0, 11)
    assert rows["South"]["conditional"] == 1


def test_conditions_summary(world):
    s = summary_of(world)
    counts = {c["condition"]: c["replies"] for c in s.conditions}
    assert s.conditions_replies == 1
    assert counts == {
        "emergencies_only": 1,
        "officer_duress": 0,
        "own_authority": 0,
        "requirements": 0,
        "other": 1,
    }
    assert [t["text"] for t in s.conditions_texts] == ["Daylight only"]


def test_reply_progress_counts_first_answers(world):
    progress = summary_of(world).progress
    at = {p["minutes"]: p["answered"] for p in progress}
    assert progress[0]["minutes"] == 0 and progress[1]["minutes"] == 5  # 4 h span: 5-min steps
    assert (at[25], at[30], at[45], at[50], at[195], at[200]) == (0, 1, 2, 3, 3, 4)
    assert progress[-1]["answered"] == 4 and progress[-1]["share"] == 0.8


def test_the_cancelled_poll_keeps_its_own_figures(world):
    poll = Poll.objects.get(pk=world["cancelled"].pk)
    s = dashboards.poll_summary(poll=poll)
    assert (s.asked, s.replied, s.officers_available) == (1, 1, 25)


def test_overview_lists_open_polls_with_progress(world):
    polls = dashboards.with_officers_in_window(dashboards.open_polls())
    assert [p.pk for p in polls] == [world["poll"].pk]  # the cancelled poll is not open
    poll = polls[0]
    assert (poll.asked, poll.replied) == (5, 4)
    # The overview counts what the poll's dashboard counts by default: the need's window.
    assert (poll.window, poll.window_label) == (120, "2 h")
    summary = dashboards.poll_summary(poll=poll, within=120)
    assert (poll.officers_available, poll.officers_conditional) == (
        summary.officers_available,
        summary.officers_conditional,
    )
    everything = dashboards.poll_summary(poll=poll, within=None)
    assert (everything.officers_available, everything.officers_conditional) == (36, 12)
    assert poll.officers_available < 36  # some answers cannot be there within 2 h


def test_standing_readiness_takes_each_teams_latest_answer(world):
    standing = dashboards.standing_readiness(days=30, now=world["now"])
    # A's later answer to the cancelled poll does not count: A-SWAT stays at 10.
    assert standing["total"] == {
        "name": "",
        "teams": 6,
        "answered": 5,
        "available": 36,
        "conditional": 12,
        "declined": 1,
        "members": 165,
    }
    by_type = {r["name"]: r for r in standing["by_type"]}
    assert by_type["SWAT / Special Response Team"] == {
        "name": "SWAT / Special Response Team",
        "teams": 4,
        "answered": 3,
        "available": 16,
        "conditional": 12,
        "declined": 0,
        "members": 95,
    }
    assert by_type["Mobile Field Force"]["declined"] == 1
    by_region = {
        r["name"]: (r["answered"], r["available"], r["conditional"], r["declined"])
        for r in standing["by_region"]
    }
    assert by_region == {"North": (3, 30, 12, 0), "South": (2, 6, 0, 1)}
    # A window that ends before the answers: nothing answered.
    old = dashboards.standing_readiness(days=7, now=world["now"] + datetime.timedelta(days=30))
    assert (old["total"]["answered"], old["total"]["available"]) == (0, 0)


def test_a_newer_answer_replaces_a_teams_standing_figure(world):
    """A later poll's answer about A's SWAT team becomes its standing figure."""
    later = PollFactory(state=Poll.State.OPEN, sent_at=world["now"])
    inv, _ = open_invitation(agency=world["agencies"]["A"], poll=later)
    answer(inv, "unavailable", at=world["now"], reason="Flooding at home")
    standing = dashboards.standing_readiness(days=30, now=world["now"] + MIN)
    by_region = {r["name"]: (r["available"], r["declined"]) for r in standing["by_region"]}
    assert by_region["North"] == (0, 2)  # both A teams declined now; B's 12 are conditional


# Zero and all-declined polls ------------------------------------------------------------------


def test_a_poll_without_answers(db, coordinator):
    poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now(), officers_needed=10)
    for _ in range(3):
        open_invitation(poll=poll)
    s = dashboards.poll_summary(poll=poll, within=None)
    assert (s.asked, s.replied, s.reply_rate, s.officers) == (3, 0, 0.0, 0)
    assert all(p.available == p.everyone == 0 for p in s.curve)
    assert s.need.met_available_at is None and s.need.shortfall_everyone == 10
    assert s.by_type == [] and s.conditions_replies == 0
    assert [r["asked"] for r in s.by_region] == [1, 1, 1]
    assert all(p["answered"] == 0 for p in s.progress)


def test_a_poll_everyone_declined(db, client, official):
    poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now())
    for reason in ("Short staffed", '=HYPERLINK("http://x")'):
        inv, _ = open_invitation(poll=poll)
        answer(inv, "unavailable", at=timezone.now(), reason=reason)
    s = dashboards.poll_summary(poll=poll, within=None)
    assert (s.replied, s.available, s.conditional, s.unavailable, s.officers) == (2, 0, 0, 2, 0)
    assert s.curve[-1].everyone == 0
    client.force_login(official)
    page = client.get(reverse("poll-dashboard", args=[poll.pk]))
    assert page.status_code == 200
    assert "Declined (2)" in page.text and "Short staffed" in page.text
    rows = list(csv.DictReader(io.StringIO(csv_text(client, poll))))
    assert len(rows) == 2 and {r["team"] for r in rows} == {""}
    assert {r["decision"] for r in rows} == {"Unavailable"}
    # A reason that looks like a spreadsheet formula is exported as text.
    assert '\'=HYPERLINK("http://x")' in {r["decline_reason"] for r in rows}


# Pages ----------------------------------------------------------------------------------------


def csv_text(client, poll) -> str:
    response = client.get(reverse("poll-dashboard-csv", args=[poll.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return b"".join(response.streaming_content).decode()


def test_dashboard_page_shows_the_figures(client, official, world):
    client.force_login(official)
    page = client.get(reverse("poll-dashboard", args=[world["poll"].pk]))
    assert page.status_code == 200
    html = page.text
    assert "Planning survey" in html
    assert 'data-figure="officers-available">10<' in html  # within the need's deadline: 2 h
    assert 'data-figure="officers-conditional">12<' in html
    assert 'data-figure="late">1<' in html
    assert "met <strong>by 1 h 45 min</strong>" in html
    assert "10 short" in html
    assert 'aria-sort="ascending"' in html  # sorted by arrival
    assert "Daylight only" in html and "Court duty all week" in html
    assert world["agencies"]["E"].name in html  # not answered, with its contacts
    page = client.get(reverse("poll-dashboard", args=[world["poll"].pk]), {"within": "all"})
    assert 'data-figure="officers-available">36<' in page.text


def test_dashboard_within_control_and_bad_values(client, official, world):
    client.force_login(official)
    url = reverse("poll-dashboard", args=[world["poll"].pk])
    page = client.get(url, {"within": "480"})
    assert 'data-figure="officers-available">30<' in page.text
    assert '<option value="480" selected>' in page.text
    bad = client.get(url, {"within": "-5"})
    assert bad.status_code == 200
    assert "is not a number of minutes" in bad.text
    assert 'data-figure="officers-available">10<' in bad.text  # back to the need's deadline
    summary = client.get(
        reverse("poll-dashboard-summary", args=[world["poll"].pk]), {"within": "soon"}
    )
    assert summary.status_code == 400 and summary.json()["field"] == "within"


def test_replies_table_sorts_in_the_database(client, official, world):
    client.force_login(official)
    url = reverse("poll-dashboard", args=[world["poll"].pk])
    names = [world["agencies"][n].name for n in "ABCD"]

    def order(sort, within="all"):
        replies = client.get(url, {"sort": sort, "within": within}).context["reply_rows"]
        return [r.agency.name for r in replies]

    a, b, c, d = names
    assert order("arrival") == [a, b, d, c]  # 60, 105, 600; no arrival last
    assert order("-arrival") == [d, b, a, c]  # no arrival last either way
    assert order("-officers") == [a, b, d, c]  # 30, 12, 6, 0
    assert order("-officers", within="120") == [b, a, c, d]  # 12, 10, then 0 by name
    assert order("depart") == [a, b, d, c]  # 20, 30, 200
    assert order("-travel") == [d, b, a, c]  # 400, 75, 40
    assert order("agency") == names
    assert order("nonsense") == order("arrival")


def test_answer_rows_show_each_team_line_and_who_changed_it(client, coordinator, official, world):
    url = reverse("poll-dashboard", args=[world["poll"].pk])
    client.force_login(official)
    html = client.get(url).text  # within the need's 2 h
    swat = "SWAT / Special Response Team T2"
    line = f"{swat}: 6, arrives 10 h (after 2 h)"  # D's team, outside the window
    assert f'<li class="muted" title="{line}">{line}</li>' in html
    assert ">Mobile Field Force T1: 20, arrives 2 h 30 min (after 2 h)</li>" in html
    assert f'<li title="{swat}: 10, arrives 1 h">{swat}: 10, arrives 1 h</li>' in html
    # An emailed link's answer: officials see how it came, not the address it went to.
    email = world["inv"]["A"].email
    assert "emailed link" in html and email not in html
    client.force_login(coordinator)
    assert email in client.get(url).text
    # Conditions in full in the cell's title: the ticked ones, then their words.
    conditions = "Emergencies only, not routine calls for service; Other (describe below)"
    assert f'title="{conditions}; “Daylight only”"' in html


def test_silent_agencies_page_in_name_order(client, official, world, monkeypatch):
    monkeypatch.setattr(dashboard_views, "PAGE_SIZE", 1)
    url = reverse("poll-dashboard", args=[world["poll"].pk])
    client.force_login(official)
    first = client.get(url).context
    # E was asked twice (its alternate too): two invitations, one agency, not answered.
    assert first["silent_count"] == 1
    assert first["silent"].paginator.num_pages == 2
    second = client.get(url, {"silent_page": 2}).context
    rows = first["silent_rows"] + second["silent_rows"]
    assert [(i.agency.name, i.is_escalation) for i in rows] == [
        (world["agencies"]["E"].name, False),
        (world["agencies"]["E"].name, True),
    ]
    answer(world["inv"]["E"], "unavailable", at=timezone.now(), reason="Flooding")
    assert client.get(url).context["silent_rows"] == []


def test_summary_json(client, official, world):
    client.force_login(official)
    data = client.get(reverse("poll-dashboard-summary", args=[world["poll"].pk])).json()
    assert data["within_minutes"] == 120
    assert data["headline"]["officers_available"] == 10
    assert data["need"]["met_with_conditions_at_minutes"] == 105
    assert len(data["arrival_curve"]) == 34 and data["arrival_curve"][-1]["by_minutes"] is None


def test_map_points(client, official, world):
    client.force_login(official)
    data = client.get(
        reverse("poll-dashboard-map", args=[world["poll"].pk]), {"within": "all"}
    ).json()
    points = {p[1]: p for p in data["agencies"]}
    assert len(points) == 5  # E once, though asked twice
    a = points[world["agencies"]["A"].name]
    assert (a[4], a[5], a[6]) == ("available", 30, 60)
    assert points[world["agencies"]["E"].name][4:6] == ["", 0]
    within = client.get(reverse("poll-dashboard-map", args=[world["poll"].pk])).json()
    assert {p[1]: p[5] for p in within["agencies"]}[world["agencies"]["A"].name] == 10


def test_csv_has_one_row_per_team_line(client, coordinator, world):
    client.force_login(coordinator)
    rows = list(csv.DictReader(io.StringIO(csv_text(client, world["poll"]))))
    lines = [(r["agency"], r["team_type"], r["officers"], r["arrival_minutes"]) for r in rows]
    a, b, c, d, e = (world["agencies"][n].name for n in "ABCDE")
    assert sorted(lines) == sorted(
        [
            (a, "SWAT / Special Response Team", "10", "60"),
            (a, "Mobile Field Force", "20", "150"),
            (b, "SWAT / Special Response Team", "12", "105"),
            (d, "SWAT / Special Response Team", "6", "600"),
            (c, "", "", ""),
            # E has not answered: a row per invitation (its primary and the alternate asked).
            (e, "", "", ""),
            (e, "", "", ""),
        ]
    )
    silent = [r for r in rows if r["agency"] == e]
    assert {r["answered"] for r in silent} == {"no"} and all(r["delivery"] for r in silent)
    assert all(r["contact_email"] for r in silent)  # a coordinator sees whom it went to
    assert {r["answered"] for r in rows if r["agency"] != e} == {"yes"}
    b_row = next(r for r in rows if r["agency"] == b)
    assert b_row["conditions"].startswith("Emergencies only") and b_row["version"] == "1"
    assert next(r for r in rows if r["agency"] == a)["version"] == "2"


def test_live_refresh_swaps_nothing_until_an_answer_arrives(
    client, official, clock, world, django_capture_on_commit_callbacks
):
    client.force_login(official)
    url = reverse("poll-dashboard", args=[world["poll"].pk])
    first = client.get(url)
    stamp = first.context["summary"].stamp
    unchanged = client.get(url, {"stamp": stamp}, headers={"HX-Request": "true"})
    assert unchanged.status_code == 204
    with django_capture_on_commit_callbacks(execute=True):  # as the answer commits
        answer(
            world["inv"]["E"],
            "available",
            [(world["teams"]["E-SWAT"], 9, 10, 20, 9)],
            at=timezone.now(),
        )
    fresh = client.get(url, {"stamp": stamp}, headers={"HX-Request": "true"})
    assert fresh.status_code == 200
    assert fresh.text.lstrip().startswith('<div id="live"')  # the partial, not the page
    assert "<html" not in fresh.text
    assert 'data-figure="officers-available">19<' in fresh.text


def test_watchers_refreshing_cost_the_poll_row_only_and_see_its_state_at_once(
    client, official, clock, world, django_assert_max_num_queries
):
    """The answers' and invitations' counts behind the stamp are shared for a few seconds: a
    refresh then reads the poll's row only. The poll's own state is never cached, and a
    delivery receipt shows once the counts are taken again."""
    from django.core.cache import cache

    from surveys import chasing

    client.force_login(official)
    poll = world["poll"]
    url = reverse("poll-dashboard", args=[poll.pk])
    stamp = client.get(url).context["summary"].stamp
    live = {"HX-Request": "true"}
    with django_assert_max_num_queries(4):  # session, user, two-factor, the poll's row
        assert client.get(url, {"stamp": stamp}, headers=live).status_code == 204
    # A receipt waits for the counts to be taken again (settings: at most every 2 seconds).
    Invitation.objects.filter(pk=world["inv"]["E"].pk).update(receipt="delivered")
    assert client.get(url, {"stamp": stamp}, headers=live).status_code == 204
    cache.clear()  # as when they expire
    assert client.get(url, {"stamp": stamp}, headers=live).status_code == 200
    stamp = client.get(url).context["summary"].stamp
    # A text or email that did not arrive changes the dashboard (its delivery column) too.
    Invitation.objects.filter(pk=world["inv"]["D"].pk).update(receipt="undelivered")
    cache.clear()
    assert client.get(url, {"stamp": stamp}, headers=live).status_code == 200
    stamp = client.get(url).context["summary"].stamp
    assert client.get(url, {"stamp": stamp}, headers=live).status_code == 204
    chasing.poll_close(poll=Poll.objects.get(pk=poll.pk))
    closed = client.get(url, {"stamp": stamp}, headers=live)
    assert closed.status_code == 200 and closed.context["poll"].state == Poll.State.CLOSED


def test_the_lists_are_rendered_once_per_change_and_kind_of_reader(
    client, coordinator, official, world, django_assert_max_num_queries
):
    """Officials watching one poll share one rendering of its long lists, which reads no rows
    again until something changes; a coordinator's (with the contacts asked) is never one an
    official is shown, and an official's never hides them from a coordinator."""
    url = reverse("poll-dashboard", args=[world["poll"].pk])
    e_contact = world["inv"]["E"].email
    client.force_login(official)  # first: an official's rendering, without the contacts
    seen = client.get(url)
    assert e_contact not in seen.text and "primary contact" in seen.text
    client.force_login(coordinator)
    first = client.get(url)
    assert e_contact in first.text
    with django_assert_max_num_queries(5):  # session, user, two-factor, poll: no rows
        again = client.get(url)
    assert again.text.count(e_contact) == first.text.count(e_contact)
    client.force_login(official)
    assert e_contact not in client.get(url).text
    # Another page or order of the same lists is another rendering.
    by_agency = client.get(url, {"sort": "agency"}).text
    assert by_agency.index("A Police") < by_agency.index("D Police")
    by_agency = client.get(url, {"sort": "-agency"}).text
    assert by_agency.index("D Police") < by_agency.index("A Police")


def test_a_cached_rendering_of_the_lists_builds_none_of_them(client, official, world, monkeypatch):
    """The lists' queries, pages, sort links and page links are made only when the lists are
    rendered: a page whose lists come from the cache makes none."""
    from readiness.dashboards import figures, views

    url = reverse("poll-dashboard", args=[world["poll"].pk])
    client.force_login(official)
    first = client.get(url).text

    def unused(*args, **kwargs):
        raise AssertionError("made for a rendering that was cached")

    for name in ("poll_replies", "poll_silent", "poll_declines", "reply_rows", "silent_rows"):
        monkeypatch.setattr(figures, name, unused)
    for name in ("_page", "_sort_links"):
        monkeypatch.setattr(views, name, unused)
    again = client.get(url)
    assert again.status_code == 200
    assert again.text.count("Police") == first.count("Police") > 0  # the same lists


def test_a_poll_that_does_not_exist_is_not_found(client, official):
    client.force_login(official)
    for pk in (987654, 2**63, 10**30):  # the last two: beyond a key's range
        assert client.get(reverse("poll-dashboard", args=[pk])).status_code == 404


def test_the_required_qualifications_show_by_name_before_the_typed_requirements(
    client, official, world
):
    from agencies.models import Qualification

    poll = world["poll"]
    poll.required_qualifications.set([Qualification.objects.create(name=name, code=name.lower())
                                      for name in ("Rifle", "Breaching")])  # fmt: skip
    client.force_login(official)
    page = client.get(reverse("poll-dashboard", args=[poll.pk])).text
    wanted = "requirements: Current Breaching; Current Rifle; State SWAT certification"
    assert wanted in page


def test_the_figures_are_rendered_once_per_change_and_window(
    client, official, world, settings, django_capture_on_commit_callbacks
):
    """The figures, charts and tables are one rendering per poll, stamp and window, shared by
    everyone watching (what the stamp does not count, here the map's tiles, shows when it is
    rendered again); an answer changes the stamp, and the next page renders them afresh."""
    url = reverse("poll-dashboard", args=[world["poll"].pk])
    client.force_login(official)
    settings.MAP_TILES_URL = "https://tiles.one.example/{z}/{x}/{y}.png"
    assert "tiles.one.example" in client.get(url).text
    settings.MAP_TILES_URL = "https://tiles.two.example/{z}/{x}/{y}.png"
    again = client.get(url).text
    assert "tiles.one.example" in again and "tiles.two.example" not in again  # shared
    assert "tiles.two.example" in client.get(url, {"within": "all"}).text  # another window
    reply = Reply.objects.get(poll=world["poll"], agency=world["agencies"]["C"])
    with django_capture_on_commit_callbacks(execute=True):
        answer(world["inv"]["C"], "unavailable", base=reply.version, at=timezone.now(),
               reason="Court duty all month")  # fmt: skip
    after = client.get(url).text
    assert "tiles.two.example" in after and "tiles.one.example" not in after  # a change


def test_user_text_is_escaped_on_the_dashboard(client, official, world):
    agency = world["agencies"]["B"]
    agency.name = "<script>alert(1)</script> PD"
    agency.save()
    Reply.objects.filter(agency=agency).update(conditions_text="<b>bold</b>")
    client.force_login(official)
    html = client.get(reverse("poll-dashboard", args=[world["poll"].pk])).text
    assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; PD" in html
    overview = client.get(reverse("dashboard")).text
    assert "<script>alert(1)" not in overview


def test_overview_page(client, official, world):
    client.force_login(official)
    page = client.get(reverse("dashboard"), {"days": "90"})
    assert page.status_code == 200
    assert "Chicago critical incidents" in page.text and "Stood down" not in page.text
    assert "2 h <small>(the need's time)</small>" in page.text  # every figure says its window
    assert "5 of 6 teams" in page.text
    assert page.context["days"] == 90
    assert client.get(reverse("dashboard"), {"days": "x"}).context["days"] == 30


def test_officials_and_coordinators_land_on_the_overview(client, official):
    client.force_login(official)
    assert client.get(reverse("home"))["Location"] == reverse("dashboard")


def test_a_draft_has_no_figures_yet(client, coordinator):
    poll = PollFactory(created_by=coordinator)
    client.force_login(coordinator)
    page = client.get(reverse("poll-dashboard", args=[poll.pk]))
    assert page.status_code == 200 and "has not been sent" in page.text


# Query counts ---------------------------------------------------------------------------------


def bulk_poll(size: int, coordinator) -> Poll:
    """A sent poll asking `size` agencies, three quarters answering with two teams each."""
    from agencies.models import Agency, Contact, SpecialTeam
    from surveys.models import ReplyLine

    swat = TeamType.objects.get(code="swat")
    region = RegionFactory(name=f"Bulk {size}")
    now = timezone.now()
    agencies = Agency.objects.bulk_create(
        Agency(
            code=f"bulk-{size}-{i}",
            name=f"Bulk {size}-{i} PD",
            kind="municipal",
            region=region,
            latitude=41 + i / 10000,
            longitude=-88,
        )
        for i in range(size)
    )
    contacts = Contact.objects.bulk_create(
        Contact(agency=a, name=f"Chief {a.pk}", email=f"c{a.pk}@bulk.example", role="primary")
        for a in agencies
    )
    teams = SpecialTeam.objects.bulk_create(
        SpecialTeam(
            code=f"bulk-{a.pk}-{n}",
            name=f"Team {n}",
            agency=a,
            team_type=swat,
            level=n + 1,
            members=20,
        )
        for a in agencies
        for n in range(2)
    )
    poll = PollFactory(
        state=Poll.State.OPEN,
        sent_at=now - 60 * MIN,
        officers_needed=50,
        needed_by=now,
        created_by=coordinator,
    )
    Invitation.objects.bulk_create(
        Invitation(
            poll=poll,
            agency=a,
            contact=c,
            email=c.email,
            distance_km=10,
            travel_minutes=30,
            state="sent",
        )
        for a, c in zip(agencies, contacts, strict=True)
    )
    decisions = ["available", "conditional", "unavailable"]
    replies = Reply.objects.bulk_create(
        Reply(
            poll=poll,
            agency=a,
            decision=decisions[i % 3],
            created_at=now,
            updated_at=now,
            decline_reason="Busy" if i % 3 == 2 else "",
            conditions=["other"] if i % 3 == 1 else [],
            officers=10,
            earliest_arrival_minutes=30,
        )
        for i, a in enumerate(agencies[: size * 3 // 4])
    )
    ReplyLine.objects.bulk_create(
        ReplyLine(
            reply=r,
            poll=poll,
            team=t,
            officers=5,
            depart_minutes=10,
            travel_minutes=20 * n,
            arrival_minutes=10 + 20 * n,
            estimated_travel_minutes=30,
            decision=r.decision,
            team_type_id=t.team_type_id,
            team_level=t.level,
        )
        for r in replies
        if r.decision != "unavailable"
        for n, t in enumerate(
            teams[2 * agencies.index(r.agency) : 2 * agencies.index(r.agency) + 2]
        )
    )
    return poll


@pytest.mark.parametrize("name", ["poll-dashboard", "poll-dashboard-summary", "poll-dashboard-map"])
def test_query_count_does_not_grow_with_the_poll(client, coordinator, name):
    client.force_login(coordinator)
    counts = []
    for size in (10, 1000):
        poll = bulk_poll(size, coordinator)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse(name, args=[poll.pk]), {"within": "all"})
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_dashboard_page_queries_are_bounded(client, coordinator, django_assert_max_num_queries):
    poll = bulk_poll(40, coordinator)
    client.force_login(coordinator)
    with django_assert_max_num_queries(30):
        page = client.get(reverse("poll-dashboard", args=[poll.pk]))
    # A redirect or a refusal is cheap: the bound means something only for the page itself.
    assert page.status_code == 200 and page.context["summary"].asked == 40
    with django_assert_max_num_queries(8):
        overview = client.get(reverse("dashboard"))
    assert overview.status_code == 200 and poll.title in overview.text


def test_summary_json_is_plain_json(client, coordinator):
    poll = bulk_poll(20, coordinator)
    client.force_login(coordinator)
    data = client.get(reverse("poll-dashboard-summary", args=[poll.pk]), {"within": "all"})
    headline = json.loads(data.content)["headline"]
    # 15 of 20 answered: 5 available, 5 conditional, 5 unavailable; two teams of 5 each.
    assert (
        headline["agencies_replied"],
        headline["officers_available"],
        headline["officers_conditional"],
    ) == (15, 50, 50)


def test_the_needs_window_counts_from_the_minute_the_poll_was_sent(client, official):
    """Sent at 14:00:40 for officers by 17:00: a 3-hour need ("within 3 h"), not 2 h 59 min."""
    sent = timezone.now().replace(second=40, microsecond=0)
    poll = PollFactory(state=Poll.State.OPEN, sent_at=sent, officers_needed=20,
                       needed_by=sent.replace(second=0) + datetime.timedelta(hours=3))  # fmt: skip
    open_invitation(poll=poll)
    assert dashboards.need_deadline_minutes(poll) == 180
    client.force_login(official)
    page = client.get(reverse("poll-dashboard", args=[poll.pk]))
    assert page.context["within"] == 180 and page.context["within_label"] == "3 h"


def test_officials_csv_names_no_contact_and_the_history_export_lists_every_version(
    client, official, coordinator, world
):
    client.force_login(official)
    rows = list(csv.DictReader(io.StringIO(csv_text(client, world["poll"]))))
    silent = [r for r in rows if r["answered"] == "no"]
    assert silent and {(r["contact"], r["contact_email"]) for r in silent} == {("", "")}
    url = reverse("poll-dashboard-history-csv", args=[world["poll"].pk])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="poll-{world["poll"].pk}-history-'
    )
    history = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    a = world["agencies"]["A"].name
    assert [r["version"] for r in history if r["agency"] == a] == ["1", "2"]
    assert all("@" not in r["by"] for r in history)  # officials: names, not addresses
    client.force_login(coordinator)
    response = client.get(url)
    full = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(full) == len(history)


def test_the_print_brief_carries_a_dated_header(client, official, world, clock):
    client.force_login(official)
    page = client.get(reverse("poll-dashboard", args=[world["poll"].pk])).text
    header = page.split('class="print-only print-header">')[1].split("</p>")[0]
    printed = timezone.localtime().strftime("%a %b %-d, %Y %H:%M")
    assert f"printed {printed}" in header and "Chicago critical incidents" in header
    assert "Planning survey" in header and "counted within 2 h" in header
    assert '<span class="no-print">; they update by themselves' in page


def test_officials_watching_one_poll_cost_one_computation_per_change(
    client, coordinator, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    poll = bulk_poll(20, coordinator)
    client.force_login(coordinator)
    url = reverse("poll-dashboard-summary", args=[poll.pk])
    with CaptureQueriesContext(connection) as first:
        before = client.get(url, {"within": "all"}).json()
    with CaptureQueriesContext(connection) as second:
        again = client.get(url, {"within": "all"}).json()
    assert again == before
    assert len(second) <= len(first) - 8, (len(first), len(second))  # from the cache
    # An answer changes the stamp: the figures are computed again, and they moved.
    reply = Reply.objects.filter(poll=poll, decision="unavailable").first()
    with django_capture_on_commit_callbacks(execute=True):
        replies.reply_submit(
            poll=poll, agency=reply.agency, base_version=reply.version, lines=[],
            answer={"decision": "available"}, user=coordinator, confirm=False,
        )  # fmt: skip
    with CaptureQueriesContext(connection) as third:
        after = client.get(url, {"within": "all"}).json()
    assert len(third) == len(first)
    assert (
        after["headline"]["agencies_unavailable"] == before["headline"]["agencies_unavailable"] - 1
    )


def test_the_live_map_fetches_only_what_changed(client, coordinator):
    poll = bulk_poll(20, coordinator)
    client.force_login(coordinator)
    url = reverse("poll-dashboard-map", args=[poll.pk])
    full = client.get(url, {"within": "all"}).json()
    assert not full["partial"] and len(full["agencies"]) == 20
    nothing = client.get(url, {"within": "all", "since": full["as_of"]}).json()
    assert nothing["partial"] and nothing["agencies"] == []
    reply = Reply.objects.filter(poll=poll, decision="unavailable").first()
    Reply.objects.filter(pk=reply.pk).update(decision="available", decline_reason="",
                                             updated_at=timezone.now())  # fmt: skip
    changed = client.get(url, {"within": "all", "since": full["as_of"]}).json()
    assert [p[0] for p in changed["agencies"]] == [reply.agency_id]
    assert changed["agencies"][0][4] == "available"
    from surveys.models import Invitation

    added = Invitation.objects.filter(poll=poll).exclude(agency=reply.agency).first()
    Invitation.objects.filter(pk=added.pk).update(created_at=timezone.now())  # asked just now
    both = client.get(url, {"within": "all", "since": full["as_of"]}).json()
    assert {p[0] for p in both["agencies"]} == {reply.agency_id, added.agency_id}
    for bad in ("yesterday", "2026-02-31T10:00:00+00:00", "2026-01-01T10:00:00"):
        again = client.get(url, {"within": "all", "since": bad}).json()
        assert not again["partial"] and len(again["agencies"]) == 20  # the whole set instead
