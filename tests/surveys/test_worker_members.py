"""Issue 19 end to end on real services: a commander forwards a poll to 30 members; a real
Celery worker (Redis broker, PostgreSQL) emails and texts them (SMTP sink, the fake SMS
provider); members answer by link and by text; the tally on the commander's form updates live;
the commander submits the roll-up; the dashboard shows member-backed officers and their
arrival. Qualifications count only unexpired; a member away is not asked.

Needs REDIS_URL and PostgreSQL (CI has both; with CI=true their absence fails the test)."""

import datetime as dt
import html
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agencies.models import MemberQualification, Qualification, TeamMember
from surveys.models import MemberAsk, Poll, Reply
from tests import fake_sms

from ..factories import SpecialTeamFactory, TeamTypeFactory, UserFactory
from .conftest import wait_until
from .factories import PollFactory, open_invitation

pytestmark = pytest.mark.django_db(transaction=True)

LINK, CODE = re.compile(r"(/m/[\w-]+/)"), re.compile(r"reply (\d{4}) Y")


@pytest.fixture
def sms_workers(workers, sms_provider):
    workers.env.update(
        SMS_PROVIDER="twilio", SMS_API_URL=sms_provider.url, SMS_ACCOUNT_SID=fake_sms.ACCOUNT,
        SMS_AUTH_TOKEN=fake_sms.TOKEN, SMS_FROM=fake_sms.FROM,
    )  # fmt: skip
    workers.start()
    return workers


def test_thirty_members_answer_by_link_and_text_and_the_roll_up_reaches_the_dashboard(
    sms_workers, smtp_sink, sms_provider, commander
):
    swat = TeamTypeFactory(code="swat-e2e")
    agency = commander.agency
    team = SpecialTeamFactory(agency=agency, team_type=swat, name="SRT", members=31)
    cert = Qualification.objects.create(code="swat-cert-e2e", name="SWAT certification")
    today = timezone.localdate()
    people = []
    for n in range(30):
        by_text = n >= 20  # ten members have a mobile only
        people.append(TeamMember.objects.create(
            team=team, agency=agency, name=f"Officer {n:02d}",
            email="" if by_text else f"officer{n}@pd.example",
            mobile=f"+1312555{1000 + n:04d}" if by_text else "",
        ))  # fmt: skip
        if n != 29:  # one member holds none; one has let it expire
            expires = today - dt.timedelta(days=3) if n == 28 else today + dt.timedelta(days=90)
            MemberQualification.objects.create(member=people[-1], qualification=cert,
                                               expires_on=expires)  # fmt: skip
    TeamMember.objects.create(team=team, agency=agency, name="On Leave", email="leave@pd.example",
                              away_until=today + dt.timedelta(days=14))  # fmt: skip
    poll = PollFactory(state=Poll.State.OPEN, sent_at=timezone.now())
    poll.target_team_types.set([swat])
    poll.required_qualifications.set([cert])
    open_invitation(agency=agency, poll=poll)

    chief = Client()
    chief.force_login(commander)
    answer_by = timezone.localtime(poll.deadline - dt.timedelta(hours=1))
    response = chief.post(reverse("surveys:my-agency-members", args=[poll.pk]),
                          {"answer_by": answer_by.strftime("%Y-%m-%dT%H:%M")})  # fmt: skip
    assert response.status_code == 302
    sent = MemberAsk.objects.filter(poll=poll, state=MemberAsk.State.SENT)
    assert wait_until(lambda: sent.count() == 30), list(MemberAsk.objects.values("state"))
    assert not MemberAsk.objects.filter(member__name="On Leave").exists()  # away: not asked
    assert len(smtp_sink.messages) == 20
    assert sum(len(sms_provider.to(p.mobile)) for p in people if p.mobile) == 10

    form = chief.get(reverse("surveys:my-agency-reply", args=[poll.pk]))
    refresh = html.unescape(re.search(r'hx-get="([^"]+)" hx-trigger="every 15s"', form.text)[1])
    assert chief.get(refresh).status_code == 204  # nobody has answered yet

    # Twenty answer by link: 1-18 willing (leaving in 10 + n minutes), 0 and 19 not.
    for message in smtp_sink.messages:
        n = int(re.search(r"officer(\d+)@", message.rcpt_tos[0])[1])
        body = message.message.get_body(("plain",)).get_content()
        data = {"answer": "willing", "depart_other": str(10 + n)} if 0 < n < 19 else {
            "answer": "not_willing"}  # fmt: skip
        assert Client().post(LINK.search(body)[1], data).status_code == 200
    live = chief.get(refresh)
    assert live.status_code == 200 and '<span data-tally="willing">18</span>' in live.text
    # Ten answer by text: eight willing, one with conditions, one no.
    for p in people[20:]:
        code = CODE.search(sms_provider.to(p.mobile)[0].body)[1]
        n = int(p.name[-2:])
        words = {27: f"{code} C 20 days only", 26: f"{code} N"}.get(n, f"{code} Y {10 + n}")
        reply = sms_provider.post_inbound(Client(), p.mobile, words)
        assert "Recorded for" in reply.content.decode(), reply.content
    live = chief.get(refresh)
    assert '<span data-tally="willing">26</span>' in live.text
    # Willing without conditions: 1-18, 20-25, 28, 29 = 26; qualified: not 28 (expired) or 29.
    assert '<span data-tally="qualified">24</span>' in live.text

    form = chief.get(reverse("surveys:my-agency-reply", args=[poll.pk]))
    [line] = [f for f in form.context["submission"].lines if f.team == team]
    assert (line.initial["officers"], line.initial["officers_qualified"]) == (24, 24)
    assert line.initial["depart_minutes"] == 10 + 25  # the latest of those counted
    data = {"version": "0", "decision": "available", "authorised_by_name": "Chief",
            "authorised_by_rank": "Chief"}  # fmt: skip
    for key in ("officers", "depart_minutes", "travel_minutes", "officers_qualified"):
        data[f"team-{team.pk}-{key}"] = str(line.initial[key])
    assert chief.post(reverse("surveys:my-agency-reply", args=[poll.pk]), data).status_code == 302
    reply = Reply.objects.get(poll=poll, agency=agency)
    assert (reply.officers, reply.lines.get().officers_backed) == (24, 24)
    # Members can no longer change their answers; the roll-up is on the dashboard.
    assert MemberAsk.objects.filter(poll=poll, backing=True).count() == 24
    coordinator = Client()
    coordinator.force_login(UserFactory(role="coordinator"))
    summary = coordinator.get(reverse("poll-dashboard-summary", args=[poll.pk])).json()
    assert summary["headline"]["officers_backed_by_members"] == 24
    assert summary["headline"]["officers_qualified_available"] == 24
    assert summary["arrival_curve"][-1]["backed_by_members"] == 24
    first = next(p for p in summary["arrival_curve"] if p["backed_by_members"])
    assert first["backed_by_members"] < 24  # members' own times, not one line's arrival
