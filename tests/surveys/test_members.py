"""A commander asks the members of the targeted teams (issue 19, part 2): once each, by a
personal link that reaches only that member's answer, taken until the commander sends the
agency's answer or the poll closes, and tallied on the commander's page."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agencies.models import TeamMember
from readiness.models import AuditEvent
from surveys import geo
from surveys.models import MemberAsk, Poll, Reply

from ..factories import AgencyFactory
from .factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db

LINK = re.compile(r"(/m/[A-Za-z0-9_-]+/)")


def forward(client, poll, capture, **data):
    answer_by = (timezone.localtime(poll.deadline) - timezone.timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M"
    )
    with capture(execute=True):
        return client.post(
            reverse("surveys:my-agency-members", args=[poll.pk]), {"answer_by": answer_by, **data}
        )


def station_travel(poll, agency) -> int:
    distance = geo.distance_km(agency.latitude, agency.longitude, poll.destination_latitude,
                               poll.destination_longitude)  # fmt: skip
    return geo.travel_minutes(distance)


def links(mailoutbox) -> dict[str, str]:
    return {m.to[0]: LINK.search(m.body)[1] for m in mailoutbox if "asks:" in m.subject}


def test_the_commander_asks_each_active_member_of_the_targeted_teams_once(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _srt, _ = world
    client.force_login(commander)
    assert forward(client, poll, django_capture_on_commit_callbacks).status_code == 302
    asks = {a.member.name: a for a in MemberAsk.objects.select_related("member")}
    assert set(asks) == {"Dana Ruiz", "Sam Lee", "No Email"}  # not the inactive, not the MFF
    assert asks["No Email"].state == "failed"
    assert asks["No Email"].failure_reason == "no email or mobile on the roster"
    assert set(links(mailoutbox)) == {"dana@pd.example", "sam@pd.example"}
    assert AuditEvent.objects.get(action="poll.members_forward").changes["members"] == 3
    forward(client, poll, django_capture_on_commit_callbacks)  # again: nobody twice
    assert MemberAsk.objects.count() == 3 and len(links(mailoutbox)) == 2


def test_members_answer_by_their_own_link_and_the_tally_shows_it(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _, _ = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    dana, sam = links(mailoutbox)["dana@pd.example"], links(mailoutbox)["sam@pd.example"]
    member = Client()
    page = member.get(dana)
    assert page.status_code == 200 and "SRT" in page.text
    assert "Sam Lee" not in page.text  # a link reaches only its own member's answer
    refused = member.post(dana, {"answer": "willing"})
    assert refused.status_code == 422 and "Say how soon you could leave" in refused.text
    assert member.post(dana, {"answer": "willing", "depart": "30"}).status_code == 200
    member.post(sam, {"answer": "conditional", "depart_other": "50", "note": "duress only"})
    tally = client.get(reverse("surveys:my-agency-members", args=[poll.pk]))
    [srt] = tally.context["tallies"]
    assert (srt.asked, srt.answered, srt.willing, srt.conditional, srt.silent) == (3, 2, 1, 1, 1)
    arrivals = {a.member.name: a.arrival for a in srt.asks}
    station = station_travel(poll, commander.agency)  # timed from their own station
    assert arrivals["Dana Ruiz"] == 30 + station and arrivals["Sam Lee"] == 50 + station
    assert "duress only" in tally.text


def test_answers_stop_once_the_commander_sends_the_agencys_answer(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _, invitation = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    dana = links(mailoutbox)["dana@pd.example"]
    Reply.objects.create(poll=poll, agency=invitation.agency, decision="unavailable",
                         decline_reason="x", created_at=timezone.now(),
                         updated_at=timezone.now())  # fmt: skip
    response = Client().post(dana, {"answer": "willing", "depart": "30"})
    assert response.status_code == 410
    assert "Your commander has already sent the agency" in response.text
    assert MemberAsk.objects.get(member__name="Dana Ruiz").answer == ""


def test_a_made_up_member_link_finds_nothing(client):
    assert Client().get(reverse("surveys:member-answer", args=["made-up"])).status_code == 404


def test_another_agencys_commander_cannot_see_the_tally(client, other_commander, world):
    poll, _, _ = world
    client.force_login(other_commander)
    assert client.get(reverse("surveys:my-agency-members", args=[poll.pk])).status_code == 404


def test_the_commanders_list_leads_to_asking_members(client, commander, world):
    poll, _, _ = world
    client.force_login(commander)
    page = client.get(reverse("surveys:my-agency")).text
    assert reverse("surveys:my-agency-members", args=[poll.pk]) in page


def test_the_agencys_form_starts_from_the_members_and_keeps_the_difference(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, srt, _invitation = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    dana, sam = links(mailoutbox)["dana@pd.example"], links(mailoutbox)["sam@pd.example"]
    member = Client()
    member.post(dana, {"answer": "willing", "depart": "30"})
    member.post(sam, {"answer": "willing", "depart": "45"})
    url = reverse("surveys:my-agency-reply", args=[poll.pk])
    page = client.get(url)
    assert "What your members said" in page.text
    [line] = [f for f in page.context["submission"].lines if f.team == srt]
    assert (line.initial["officers"], line.initial["depart_minutes"]) == (2, 45)
    # Both start from the station: the line arrives when the later of them would.
    assert line.initial["travel_minutes"] == station_travel(poll, commander.agency)
    # The commander sends 1 officer: the answer is theirs, and the members' tally is kept.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {
            "version": "0", "decision": "available", "authorised_by_name": "Chief Lee",
            "authorised_by_rank": "Chief", f"team-{srt.pk}-officers": "1",
            f"team-{srt.pk}-depart_minutes": "45", f"team-{srt.pk}-travel_minutes": "40",
        })  # fmt: skip
    assert response.status_code == 302
    version = Reply.objects.get(poll=poll).versions.get()
    assert version.member_tally == {
        "SRT": {"asked": 3, "willing": 2, "conditional": 0, "not_willing": 0, "silent": 1,
                "unqualified": 0, "away": 0, "suggested": 2, "given": 1},
    }  # fmt: skip
    # The one officer sent is backed by the member who arrives first (Dana leaves sooner).
    backing = MemberAsk.objects.filter(backing=True).values_list("member__name", flat=True)
    assert list(backing) == ["Dana Ruiz"]
    # And members can no longer change their answers.
    assert member.post(dana, {"answer": "not_willing"}).status_code == 410


def test_the_dashboard_tells_member_backed_officers_from_estimates(
    client, commander, coordinator, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, srt, _ = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    Client().post(links(mailoutbox)["dana@pd.example"], {"answer": "willing", "depart": "30"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("surveys:my-agency-reply", args=[poll.pk]), {
            "version": "0", "decision": "available", "authorised_by_name": "Chief Lee",
            "authorised_by_rank": "Chief", f"team-{srt.pk}-officers": "3",
            f"team-{srt.pk}-depart_minutes": "30", f"team-{srt.pk}-travel_minutes": "40",
        })  # fmt: skip
    client.force_login(coordinator)
    headline = client.get(reverse("poll-dashboard-summary", args=[poll.pk])).json()["headline"]
    assert headline["officers_available"] == 3
    assert headline["officers_backed_by_members"] == 1  # Dana; the other two are an estimate
    page = client.get(reverse("poll-dashboard", args=[poll.pk])).text
    assert "1 backed by members" in page


def test_members_with_a_mobile_get_their_link_by_text(
    client, commander, world, sms_provider, django_capture_on_commit_callbacks
):
    poll, _srt, _ = world
    TeamMember.objects.filter(name="No Email").update(mobile="+13125550177")
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    [text] = sms_provider.to("+13125550177")
    assert "asks: would you go with SRT" in text.body
    path = re.search(r"(/m/[\w-]+/)", text.body)[1]
    assert Client().get(path).status_code == 200
    assert MemberAsk.objects.get(member__name="No Email").state == "sent"


def test_a_member_away_is_not_asked_until_back(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, srt, invitation = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    dana = links(mailoutbox)["dana@pd.example"]
    member = Client()
    until = (timezone.localdate() + timezone.timedelta(days=10)).isoformat()
    past = member.post(dana, {"action": "away", "away_until": "2001-01-01"})
    assert past.status_code == 422 and "from today on" in past.text
    saved = member.post(dana, {"action": "away", "away_until": until, "away_reason": "injury"})
    assert saved.status_code == 302
    assert TeamMember.objects.get(name="Dana Ruiz").away_until.isoformat() == until
    assert AuditEvent.objects.filter(action="teammember.away").count() == 1
    # The next poll does not ask her; the roster shows why.
    second = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now())
    second.target_team_types.set(poll.target_team_types.all())
    open_invitation(agency=invitation.agency, poll=second)
    forward(client, second, django_capture_on_commit_callbacks)
    asked = set(MemberAsk.objects.filter(poll=second).values_list("member__name", flat=True))
    assert asked == {"Sam Lee", "No Email"}
    roster = client.get(reverse("agencies:roster", args=[srt.agency_id, srt.pk])).text
    assert "away until" in roster and "(injury)" in roster
    member.post(dana, {"action": "away", "away_until": ""})  # back
    forward(client, second, django_capture_on_commit_callbacks)
    assert MemberAsk.objects.filter(poll=second, member__name="Dana Ruiz").exists()


def test_answers_stop_at_the_deadline_even_before_the_poll_is_closed(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks
):
    poll, _, _ = world
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    dana, sam = links(mailoutbox)["dana@pd.example"], links(mailoutbox)["sam@pd.example"]
    assert Client().post(sam, {"answer": "willing", "depart": "30"}).status_code == 200
    Poll.objects.filter(pk=poll.pk).update(deadline=timezone.now() - timezone.timedelta(minutes=1))
    response = Client().post(dana, {"answer": "willing", "depart": "30"})
    assert response.status_code == 410 and "The poll is closed." in response.text
    assert MemberAsk.objects.get(member__name="Dana Ruiz").answer == ""
    # The answer taken has its audit row, the one refused has none.
    answered = AuditEvent.objects.filter(action="memberask.answer")
    assert [e.object_id for e in answered] == [
        str(MemberAsk.objects.get(member__name="Sam Lee").pk)
    ]


# The page: the link's one lookup (ask, poll, agencies, team, member: no field of theirs read
# later, one query at a time) and whether the agency has answered. The answer: the lookup and
# the answer's one statement on PostgreSQL (elsewhere its UPDATE and INSERT in a savepoint).
QUERIES_PAGE = 2


def queries_answer() -> int:
    from django.db import connection

    return 2 if connection.vendor == "postgresql" else 5


@pytest.mark.parametrize("purpose", [Poll.Purpose.PLANNING, Poll.Purpose.REQUEST])
def test_a_members_answer_and_page_take_a_fixed_few_queries(
    client, commander, world, mailoutbox, django_capture_on_commit_callbacks,
    django_assert_max_num_queries, purpose,
):  # fmt: skip
    """The member's link is the busiest page of a call-out: its lookup is one query with the
    ask, poll (and the agency requesting assistance), agency, team and member (nothing loaded
    later, one at a time)."""
    poll, _, _ = world
    if purpose == Poll.Purpose.REQUEST:
        Poll.objects.filter(pk=poll.pk).update(
            purpose=purpose, requesting_person="Cmdr. Ames",
            requesting_agency=AgencyFactory(name="Lakeport Police Department"),
        )  # fmt: skip
    client.force_login(commander)
    forward(client, poll, django_capture_on_commit_callbacks)
    dana = links(mailoutbox)["dana@pd.example"]
    member = Client()
    with django_assert_max_num_queries(QUERIES_PAGE):
        page = member.get(dana)
    assert page.status_code == 200
    if purpose == Poll.Purpose.REQUEST:
        assert "Cmdr. Ames, Lakeport Police Department" in page.text
    with django_assert_max_num_queries(queries_answer()):
        response = member.post(dana, {"answer": "willing", "depart": "30", "start": "home"})
    assert "your answer is recorded" in response.text
