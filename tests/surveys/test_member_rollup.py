"""Members' answers rolled up (issue 19, part 3): travel timed from where each member starts,
the poll's required qualifications (expired ones not counted), answers by text with a reply
code, "<code> ASK" by text, one reminder to the silent, sending that survives a dead worker,
the live tally on the commander's form, and the dashboard's member-backed arrivals."""

import datetime as dt
import html
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact, MemberQualification, Qualification, TeamMember
from surveys import compose, geo, members
from surveys.models import InboundMessage, Invitation, MemberAsk, Poll, Reply

from ..factories import AgencyFactory, ContactFactory, SpecialTeamFactory, TeamTypeFactory
from .factories import PollFactory, post_request
from .test_members import forward, links, station_travel

pytestmark = pytest.mark.django_db

CODE = re.compile(r"reply (\d{4}) Y")


def said(response) -> str:
    match = re.search(r"<Message>(.*)</Message>", response.content.decode(), re.S)
    return html.unescape(match[1]) if match else ""


def answer_form(client, poll, srt, officers: int, **extra):
    return client.post(reverse("surveys:my-agency-reply", args=[poll.pk]), {
        "version": "0", "decision": "available", "authorised_by_name": "Chief Lee",
        "authorised_by_rank": "Chief", f"team-{srt.pk}-officers": str(officers),
        f"team-{srt.pk}-depart_minutes": "30", f"team-{srt.pk}-travel_minutes": "40", **extra,
    })  # fmt: skip


# Where a member starts ---------------------------------------------------------------------


def test_travel_is_timed_from_home_base_or_a_typed_place_when_the_registry_knows_it(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _srt, _ = world
    far = AgencyFactory(city="Rockford", latitude=42.2711, longitude=-89.0940)
    TeamMember.objects.filter(name="Dana Ruiz").update(home_base="Rockford, IL")
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    urls = links(mailoutbox)
    Client().post(urls["dana@pd.example"], {"answer": "willing", "depart": "30", "start": "home"})
    Client().post(urls["sam@pd.example"], {"answer": "willing", "depart": "30", "start": "other",
                                           "start_place": "Atlantis"})  # fmt: skip
    dana, sam = (MemberAsk.objects.get(member__name=n) for n in ("Dana Ruiz", "Sam Lee"))
    from_rockford = geo.travel_minutes(geo.distance_km(
        far.latitude, far.longitude, poll.destination_latitude, poll.destination_longitude
    ))  # fmt: skip
    assert (dana.travel_minutes, dana.travel_from) == (from_rockford, "Rockford, IL")
    assert dana.arrival == 30 + from_rockford
    # A place nobody can find: timed from the station, and the commander is told why.
    assert sam.travel_minutes == station_travel(poll, commander.agency)
    assert sam.travel_from == "the station; “Atlantis” not found"
    page = client.get(reverse("surveys:my-agency-members", args=[poll.pk])).text
    assert "timed from the station; “Atlantis” not found" in html.unescape(page)


def test_a_place_is_an_agency_by_name_or_city_the_largest_first():
    AgencyFactory(name="Joliet Police Department", city="Joliet", latitude=41.52,
                  longitude=-88.08, sworn_officers=250)  # fmt: skip
    AgencyFactory(name="Joliet Township PD", city="Joliet", latitude=41.50, longitude=-88.10,
                  sworn_officers=20, min_home_staffing=10)  # fmt: skip
    assert geo.locate("joliet police department") == (41.52, -88.08)  # by name, any case
    assert geo.locate("JOLIET, IL") == (41.52, -88.08)  # by city: the largest agency there
    assert geo.locate("Joliet Township PD") == (41.50, -88.10)
    assert geo.locate("Nowhere") is None


def test_coordinates_typed_as_a_start_are_used_as_given():
    assert geo.locate("41.8781, -87.6298") == (41.8781, -87.6298)
    assert geo.locate("141.8, -87.6") is None  # not a place on earth: the station is used
    assert geo.locate("") is None


# Required qualifications -------------------------------------------------------------------


def test_only_willing_members_holding_every_required_qualification_unexpired_are_counted(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, srt, _ = world
    swat_cert = Qualification.objects.create(code="swat-cert-t", name="SWAT certification")
    poll.required_qualifications.set([swat_cert])
    today = timezone.localdate()
    dana, sam = (TeamMember.objects.get(name=n) for n in ("Dana Ruiz", "Sam Lee"))
    MemberQualification.objects.create(member=dana, qualification=swat_cert,
                                       expires_on=today + dt.timedelta(days=30))  # fmt: skip
    MemberQualification.objects.create(member=sam, qualification=swat_cert,
                                       expires_on=today - dt.timedelta(days=1))  # fmt: skip
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    for url in links(mailoutbox).values():
        Client().post(url, {"answer": "willing", "depart": "30"})
    page = client.get(reverse("surveys:my-agency-reply", args=[poll.pk]))
    [tally] = page.context["tallies"]
    assert (tally.willing, len(tally.counted), tally.unqualified) == (2, 1, 1)
    assert [a.member.name for a in tally.counted] == ["Dana Ruiz"]  # Sam's has expired
    [line] = [f for f in page.context["submission"].lines if f.team == srt]
    assert (line.initial["officers"], line.initial["officers_qualified"]) == (1, 1)
    assert "Current SWAT certification" in page.text  # listed with the requirements
    detail = client.get(reverse("surveys:my-agency-members", args=[poll.pk])).text
    assert "lacks SWAT certification" in detail


def test_a_coordinator_requires_qualifications_when_composing(client, coordinator):
    cert = Qualification.objects.create(code="mff-t", name="Crowd-control training")
    client.force_login(coordinator)
    poll = PollFactory(target_agencies=[AgencyFactory()])
    response = client.patch(
        reverse("api:poll-detail", args=[poll.pk]), {"required_qualifications": [cert.pk]},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    assert response.json()["required_qualifications"] == [cert.pk]
    assert list(poll.required_qualifications.all()) == [cert]
    copy = compose.poll_duplicate(poll=poll, request=post_request(coordinator))
    assert list(copy.required_qualifications.all()) == [cert]


# Answers by text ---------------------------------------------------------------------------


@pytest.fixture
def texted_members(client, commander, world, sms_provider, django_capture_on_commit_callbacks):
    poll, srt, _ = world
    TeamMember.objects.filter(name="Dana Ruiz").update(mobile="+13125550161")
    TeamMember.objects.filter(name="Sam Lee").update(mobile="+13125550162")
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    codes = {
        n: CODE.search(sms_provider.to(n)[0].body)[1] for n in ("+13125550161", "+13125550162")
    }
    return poll, srt, codes


def test_a_member_answers_by_text_with_their_code(client, texted_members, sms_provider):
    _poll, _srt, codes = texted_members
    response = sms_provider.post_inbound(client, "+13125550161", f"{codes['+13125550161']} Y 30")
    text = said(response)
    assert text.startswith("Recorded for") and "YES: leave in 30 min, arrive in about" in text
    assert "/m/" in text  # their own link, to change it on the page
    ask = MemberAsk.objects.get(member__name="Dana Ruiz")
    assert (ask.answer, ask.depart_minutes, ask.answered_via) == ("willing", 30, "sms")
    message = InboundMessage.objects.get()
    assert (message.outcome, message.member_ask) == ("applied", ask)
    assert "/m/[hidden]/" in message.response and "/m/[hidden]/" not in text  # kept masked
    # Sam says no without a code (their only open ask), then changes it with conditions.
    assert said(sms_provider.post_inbound(client, "+13125550162", "no")).startswith("Recorded")
    sms_provider.post_inbound(client, "+13125550162", f"{codes['+13125550162']} C 45 days only")
    sam = MemberAsk.objects.get(member__name="Sam Lee")
    assert (sam.answer, sam.depart_minutes, sam.note) == ("conditional", 45, "days only")


def test_a_members_text_that_cannot_be_understood_says_how_to_fix_it(
    client, texted_members, sms_provider
):
    _poll, _srt, codes = texted_members
    code = codes["+13125550161"]
    text = said(sms_provider.post_inbound(client, "+13125550161", f"{code} Y"))
    assert "How soon could you leave? Add the minutes, e.g. Y 30." in text and "/m/" in text
    text = said(sms_provider.post_inbound(client, "+13125550161", f"{code} C 30"))
    assert "Say your conditions" in text
    assert MemberAsk.objects.get(member__name="Dana Ruiz").answer == ""  # nothing half-applied


def test_a_code_from_another_number_reaches_nobody(client, texted_members, sms_provider):
    _poll, _srt, codes = texted_members
    stranger = sms_provider.post_inbound(client, "+13125550199", f"{codes['+13125550161']} Y 30")
    assert "Recorded" not in said(stranger) and "SRT" not in said(stranger)
    assert not MemberAsk.objects.exclude(answer="").exists()


def test_a_members_text_after_the_commander_answered_is_refused(
    client, commander, texted_members, sms_provider, django_capture_on_commit_callbacks
):
    poll, srt, codes = texted_members
    with django_capture_on_commit_callbacks(execute=True):
        assert answer_form(client, poll, srt, 2).status_code == 302
    text = said(sms_provider.post_inbound(client, "+13125550161", f"{codes['+13125550161']} Y 30"))
    assert text == "Not recorded: Your commander has already sent the agency's answer."
    assert InboundMessage.objects.get().outcome == "refused"


def test_stop_from_a_member_stops_their_texts(
    client, commander, texted_members, sms_provider, django_capture_on_commit_callbacks
):
    said(sms_provider.post_inbound(client, "+13125550161", "STOP"))
    assert TeamMember.objects.get(name="Dana Ruiz").sms_stopped_at is not None
    ask = MemberAsk.objects.get(member__name="Dana Ruiz")
    before = len(sms_provider.to("+13125550161"))
    members.member_reminders_send(ask_ids=[ask.pk])  # a reminder goes by email only
    assert len(sms_provider.to("+13125550161")) == before


def test_a_commander_asks_their_members_by_texting_ask(
    client, swat_commander_by_text, sms_provider, django_capture_on_commit_callbacks
):
    poll, agency, invitation = swat_commander_by_text
    with django_capture_on_commit_callbacks(execute=True):
        response = sms_provider.post_inbound(client, "+13125550140", f"{invitation.reply_code} ASK")
    assert said(response).startswith("Asked 2 members of")
    assert MemberAsk.objects.filter(poll=poll, agency=agency).count() == 2
    assert len(sms_provider.to("+13125550141")) == 1  # the member got their link and code
    again = sms_provider.post_inbound(client, "+13125550140", f"{invitation.reply_code} ASK")
    assert said(again).startswith("Nobody new to ask")


@pytest.fixture
def swat_commander_by_text(db, settings):
    swat = TeamTypeFactory(code="swat-ask")
    agency = AgencyFactory()
    team = SpecialTeamFactory(agency=agency, team_type=swat, members=5, name="SRT")
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY, mobile="+13125550140",
                   channels="sms", name="Chief Ray")  # fmt: skip
    TeamMember.objects.create(team=team, agency=agency, name="Ann", mobile="+13125550141")
    TeamMember.objects.create(team=team, agency=agency, name="Bo", email="bo@pd.example")
    poll = PollFactory(target_agencies=[agency])
    compose.poll_send(poll=poll)
    invitation = Invitation.objects.get(poll=poll)
    Invitation.objects.filter(pk=invitation.pk).update(state=Invitation.State.SENT)
    return poll, agency, invitation


# Chasing and crashes -----------------------------------------------------------------------


def test_silent_members_are_reminded_once_halfway_to_the_commanders_deadline(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _srt, _ = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    first = links(mailoutbox)
    Client().post(first["dana@pd.example"], {"answer": "willing", "depart": "30"})
    ask = MemberAsk.objects.get(member__name="Sam Lee")
    early = ask.sent_at + (ask.answer_by - ask.sent_at) / 3
    halfway = ask.sent_at + (ask.answer_by - ask.sent_at) / 2 + dt.timedelta(minutes=1)
    assert members.members_chase(now=early) == 0
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert members.members_chase(now=halfway) == 1  # Sam only: Dana answered
    [reminder] = mailoutbox
    assert reminder.to == ["sam@pd.example"] and reminder.subject.startswith("Reminder: ")
    new_link = re.search(r"(/m/[\w-]+/)", reminder.body)[1]
    assert new_link != first["sam@pd.example"]
    for url in (new_link, first["sam@pd.example"]):  # both links reach Sam's answer
        assert Client().get(url).status_code == 200
    assert members.members_chase(now=halfway + dt.timedelta(minutes=5)) == 0  # once


def test_nobody_is_reminded_once_the_commander_has_answered(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, srt, _ = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        answer_form(client, poll, srt, 2)
    ask = MemberAsk.objects.get(member__name="Sam Lee")
    late = ask.answer_by - dt.timedelta(minutes=1)
    assert members.members_chase(now=late) == 0


def test_an_ask_claimed_by_a_dead_worker_is_sent_by_the_sweep(
    commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, srt, _ = world
    member = TeamMember.objects.get(name="Dana Ruiz")
    ask = MemberAsk.objects.create(
        poll=poll, agency=commander.agency, team=srt, member=member,
        answer_by=poll.deadline - dt.timedelta(hours=1), state=MemberAsk.State.SENDING,
        claimed_at=timezone.now() - dt.timedelta(minutes=1),
    )  # fmt: skip
    members.asks_requeue_stuck()  # a live worker's claim (a minute old) is left alone
    assert MemberAsk.objects.get(pk=ask.pk).state == "sending"
    later = timezone.now() + dt.timedelta(minutes=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert members.asks_requeue_stuck(now=later) == 1
    assert MemberAsk.objects.get(pk=ask.pk).state == "sent"
    assert [m.to for m in mailoutbox] == [["dana@pd.example"]]


def test_five_hundred_members_are_asked_in_chunks_of_a_hundred(
    client, commander, world, django_capture_on_commit_callbacks, monkeypatch
):
    poll, srt, _ = world
    TeamMember.objects.bulk_create(
        TeamMember(team=srt, agency=commander.agency, name=f"Member {n}",
                   email=f"m{n}@pd.example")
        for n in range(497)
    )  # fmt: skip
    chunks = []
    monkeypatch.setattr(members, "member_asks_send", lambda *, ask_ids: chunks.append(ask_ids))
    client.force_login(commander)
    response = forward(client, poll, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert MemberAsk.objects.filter(poll=poll).count() == 500
    assert sorted(len(c) for c in chunks) == [100] * 5
    assert len({pk for c in chunks for pk in c}) == 500  # each once


# The live tally and the dashboard ----------------------------------------------------------


def test_the_commanders_form_refreshes_its_tally_only_when_something_changed(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _srt, _ = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    page = client.get(reverse("surveys:my-agency-reply", args=[poll.pk]))
    refresh = re.search(r'hx-get="([^"]+)" hx-trigger="every 15s"', page.text)[1]
    refresh = html.unescape(refresh)
    assert client.get(refresh).status_code == 204  # nothing new
    Client().post(links(mailoutbox)["dana@pd.example"], {"answer": "willing", "depart": "30"})
    fresh = client.get(refresh)
    assert fresh.status_code == 200
    assert '<span data-tally="willing">1</span>' in fresh.text


def test_the_dashboard_counts_member_backed_officers_at_their_own_arrival(
    client, commander, coordinator, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, srt, _ = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    urls = links(mailoutbox)
    Client().post(urls["dana@pd.example"], {"answer": "willing", "depart": "15"})
    Client().post(urls["sam@pd.example"], {"answer": "willing", "depart": "240"})
    with django_capture_on_commit_callbacks(execute=True):
        assert answer_form(client, poll, srt, 2).status_code == 302
    station = station_travel(poll, commander.agency)
    client.force_login(coordinator)
    summary = client.get(reverse("poll-dashboard-summary", args=[poll.pk])).json()
    curve = {p["by_minutes"]: p["backed_by_members"] for p in summary["arrival_curve"]}
    step = lambda m: -(-m // 15) * 15  # noqa: E731 (the curve's 15-minute steps)
    assert curve[step(15 + station) - 15] == 0 and curve[step(15 + station)] == 1
    assert curve[step(240 + station)] == 2
    assert summary["headline"]["officers_backed_by_members"] == 2
    page = client.get(reverse("poll-dashboard", args=[poll.pk])).text
    assert "Members&#x27; own times: 2" in page or "Members' own times: 2" in page  # the chart
    # The answer changed by another channel (no roll-up): its members' old flags stop counting.
    from surveys import replies

    reply = Reply.objects.get(poll=poll)
    with django_capture_on_commit_callbacks(execute=True):  # the dashboards see it committed
        replies.reply_submit(
            poll=poll, agency=commander.agency, base_version=reply.version, confirm=False,
            channel="api", user=commander,
            answer={"decision": "available", "authorised_by_name": "Chief Lee",
                    "authorised_by_rank": "Chief"},
            lines=[{"team": srt, "estimate": 40, "officers": 3, "depart_minutes": 30,
                    "travel_minutes": 40}],
        )  # fmt: skip
    summary = client.get(reverse("poll-dashboard-summary", args=[poll.pk])).json()
    assert summary["arrival_curve"][-1]["backed_by_members"] == 0
    # An agency that takes its yes back takes its members off the curve.
    client.force_login(commander)
    Reply.objects.filter(poll=poll).update(decision=Reply.Decision.UNAVAILABLE, decline_reason="x")
    client.force_login(coordinator)
    summary = client.get(reverse("poll-dashboard-summary", args=[poll.pk])).json()
    assert summary["arrival_curve"][-1]["backed_by_members"] == 0


def test_members_away_are_shown_on_the_tally_not_asked(
    client, commander, world, django_capture_on_commit_callbacks
):
    poll, _srt, _ = world
    TeamMember.objects.filter(name="Sam Lee").update(
        away_until=timezone.localdate() + dt.timedelta(days=10), away_reason="leave"
    )
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    page = client.get(reverse("surveys:my-agency-members", args=[poll.pk]))
    [tally] = page.context["tallies"]
    assert [m.name for m in tally.away] == ["Sam Lee"] and tally.asked == 2
    assert "1</strong> away, not asked" in page.text
    assert Poll.objects.get(pk=poll.pk).member_asks.filter(member__name="Sam Lee").count() == 0


def test_a_commander_can_ask_only_the_members_they_tick(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _srt, _ = world
    client.force_login(commander)
    url = reverse("surveys:my-agency-members", args=[poll.pk])
    page = client.get(url)
    assert "Choose members instead (3 not asked yet)" in page.text
    sam = TeamMember.objects.get(name="Sam Lee")
    refused = forward(client, poll, django_capture_on_commit_callbacks, scope="chosen")
    assert refused.status_code == 422 and "Tick the members to ask" in refused.text
    inactive = TeamMember.objects.get(name="Gone")  # not on offer: refused, nothing asked
    bad = forward(client, poll, django_capture_on_commit_callbacks, scope="chosen",
                  members=[inactive.pk])  # fmt: skip
    assert bad.status_code == 422 and not MemberAsk.objects.exists()
    done = forward(client, poll, django_capture_on_commit_callbacks, scope="chosen",
                   members=[sam.pk])  # fmt: skip
    assert done.status_code == 302
    assert list(MemberAsk.objects.values_list("member__name", flat=True)) == ["Sam Lee"]
    assert set(links(mailoutbox)) == {"sam@pd.example"}
    # Then everyone else, with one action: Sam is not asked twice.
    forward(client, poll, django_capture_on_commit_callbacks, scope="all")
    assert MemberAsk.objects.count() == 3 and len(links(mailoutbox)) == 2


def test_a_commander_asks_members_in_waves_for_a_number_of_officers(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    from surveys import member_waves
    from surveys.models import MemberCall

    poll, srt, _ = world
    for n in range(7):  # ten active members in all on the targeted team
        TeamMember.objects.create(team=srt, agency=commander.agency, name=f"Extra {n}",
                                  email=f"extra{n}@pd.example", is_leader=n == 6)  # fmt: skip
    client.force_login(commander)
    refused = forward(client, poll, django_capture_on_commit_callbacks, scope="waves")
    assert refused.status_code == 422 and "Say how many willing officers" in refused.text
    forward(client, poll, django_capture_on_commit_callbacks, scope="waves", wanted="2")
    first = list(MemberAsk.objects.order_by("pk").values_list("member__name", flat=True))
    assert len(first) == 4 and first[0] == "Extra 6"  # twice the number, team leaders first
    call = MemberCall.objects.get()
    start = call.last_wave_at
    urls = links(mailoutbox)
    assert member_waves.advance(call, now=start + dt.timedelta(minutes=5)) == "waiting"
    # One of four says yes, two say no: 1 willing, projected 1 + 1 silent x 1/3 = 1 < 2.
    answers = iter(["willing", "not_willing", "not_willing"])
    for name in first[:3]:
        email = TeamMember.objects.get(name=name).email
        data = {"answer": next(answers), "depart": "30"}
        assert Client().post(urls[email], data).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert member_waves.advance(call, now=start + dt.timedelta(minutes=11)) == "sent"
    assert MemberAsk.objects.count() == 4 + 2  # twice the shortfall of one
    call.refresh_from_db()
    assert call.waves[-1]["willing"] == 1 and call.waves[-1]["projected"] == 1
    # A second yes covers it: the waves stop, nobody else is asked.
    second = MemberAsk.objects.order_by("pk").last()
    Client().post(links(mailoutbox)[second.member.email], {"answer": "willing", "depart": "15"})
    later = start + dt.timedelta(minutes=30)
    assert member_waves.advance(call, now=later) == "covered"
    assert member_waves.calls_advance(now=later) == 0 and MemberAsk.objects.count() == 6
    page = client.get(reverse("surveys:my-agency-members", args=[poll.pk])).text
    assert "Asking in waves for 2 willing" in page and "Enough are willing" in page
