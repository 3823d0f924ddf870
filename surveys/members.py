"""Asking the members of an agency's teams (issue 19): the commander forwards the poll to the
active members of the targeted teams; each gets a personal link that reaches only their own
answer; answers are taken until the commander submits the agency's answer or the poll closes;
the commander's page shows the tally. Nothing here counts on a dashboard: the commander's
submitted answer does."""

import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from agencies.models import SpecialTeam, TeamMember
from readiness import audit

from . import jobs, replies, selectors
from .channels import providers
from .models import MemberAsk, Poll, Reply

SEND_TASK = "surveys.tasks.send_member_asks"


class AskClosed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def targeted_teams(poll: Poll, agency) -> list[SpecialTeam]:
    teams, targeted = selectors.reply_teams(poll=poll, agency=agency)
    return [t for t in teams if t.pk in targeted]


def default_answer_by(poll: Poll, now=None):
    """Well before the poll's deadline: halfway there, on the quarter hour."""
    now = now or timezone.now()
    moment = now + (poll.deadline - now) / 2
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


@transaction.atomic
def members_forward(*, poll: Poll, agency, answer_by, request) -> int:
    """Ask every active roster member of the agency's targeted teams not asked yet; returns how
    many were asked. Sent by Celery after commit."""
    if replies.reply_refusal(poll):
        raise AskClosed("the poll no longer takes answers")
    teams = targeted_teams(poll, agency)
    asked = set(MemberAsk.objects.filter(poll=poll).values_list("member_id", flat=True))
    today = timezone.localdate()
    members = (
        TeamMember.objects.filter(team__in=teams, active=True)
        .exclude(pk__in=asked)
        .exclude(away_until__gte=today)  # said they are away (leave, injury, training)
        .select_related("team")
    )
    now = timezone.now()
    new = MemberAsk.objects.bulk_create(
        MemberAsk(poll=poll, agency=agency, team=m.team, member=m, asked_by=request.user,
                  asked_at=now, answer_by=answer_by)
        for m in members
    )  # fmt: skip
    if new:
        audit.record("poll.members_forward", request=request, obj=poll,
                     changes={"agency": agency.code, "members": len(new),
                              "answer_by": answer_by.isoformat()})  # fmt: skip
        ids = [a.pk for a in new]
        jobs.after_commit(SEND_TASK, ids)
    return len(new)


def member_asks_send(*, ask_ids: list[int]) -> int:
    """Send each member their personal link by email and by text (whichever the roster has),
    once: each ask is claimed (queued -> sent) before its messages go, and marked failed with
    the reason when none of them could be sent."""
    sent = 0
    queued = MemberAsk.objects.filter(pk__in=ask_ids, state=MemberAsk.State.QUEUED)
    for ask in queued.select_related("member", "team", "poll", "agency"):
        if not ask.member.email and not ask.member.mobile:
            MemberAsk.objects.filter(pk=ask.pk).update(
                state=MemberAsk.State.FAILED, failure_reason="no email or mobile on the roster"
            )
            continue
        token = secrets.token_urlsafe(16)
        if not MemberAsk.objects.filter(pk=ask.pk, state=MemberAsk.State.QUEUED).update(
            state=MemberAsk.State.SENT, sent_at=timezone.now(),
            token_hash=MemberAsk.hash_token(token),
        ):  # fmt: skip
            continue  # another run took it
        url = settings.SITE_URL + reverse("surveys:member-answer", args=[token])
        failures = [f for f in (_email(ask, url), _text(ask, url)) if f]
        if len(failures) == bool(ask.member.email) + bool(ask.member.mobile):
            MemberAsk.objects.filter(pk=ask.pk).update(
                state=MemberAsk.State.FAILED, failure_reason="; ".join(failures)[:300]
            )
            continue
        sent += 1
    return sent


def _email(ask: MemberAsk, url: str) -> str:
    """'' when sent (or no address), else why not: one refused address costs only itself."""
    if not ask.member.email:
        return ""
    body = render_to_string("surveys/email/member_ask.txt", {"ask": ask, "url": url,
                            "answer_by": timezone.localtime(ask.answer_by)})  # fmt: skip
    subject = f"{ask.agency.name} asks: would you respond? {ask.poll.title}"
    try:
        message = EmailMultiAlternatives(
            subject=" ".join(subject.split()), body=body, to=[ask.member.email]
        )
        mailers.default.send_messages([message])
    except Exception as exc:
        return f"email: {exc}"
    return ""


def _text(ask: MemberAsk, url: str) -> str:
    if not ask.member.mobile:
        return ""
    local = timezone.localtime(ask.answer_by)
    body = (
        f"{ask.agency.name} asks: would you go with {ask.team.name} to "
        f"{ask.poll.destination_name} ({ask.poll.get_purpose_display().lower()})? Answer by "
        f"{local:%a %H:%M}: {url}"
    )
    try:
        result = providers.provider().send(providers.Text(to=ask.member.mobile, body=body))
    except Exception as exc:  # the provider unreachable, say
        return f"text: {exc}"
    return "" if result.outcome == "sent" else f"text: {result.reason}"


def ask_by_token(token: str) -> MemberAsk | None:
    return (
        MemberAsk.objects.select_related("poll", "agency", "team", "member")
        .filter(token_hash=MemberAsk.hash_token(token))
        .first()
    )


def ask_refusal(ask: MemberAsk) -> str:
    """Why this member's answer is no longer taken ("" while it is)."""
    reason = replies.reply_refusal(ask.poll)
    if reason:
        return "The poll is closed." if reason != "cancelled" else "The poll was cancelled."
    if Reply.objects.filter(poll=ask.poll, agency=ask.agency, updated_at__gt=ask.asked_at).exists():
        return "Your commander has already sent the agency's answer."
    return ""


@transaction.atomic
def member_answer(*, ask: MemberAsk, data: dict, now=None) -> MemberAsk:
    ask = MemberAsk.objects.select_for_update().select_related("poll", "agency").get(pk=ask.pk)
    reason = ask_refusal(ask)
    if reason:
        raise AskClosed(reason)
    going = data["answer"] != MemberAsk.Answer.NOT_WILLING
    ask.answer, ask.note = data["answer"], data.get("note") or ""
    ask.depart_minutes = data.get("depart_minutes") if going else None
    ask.start = (data.get("start") or "") if going else ""
    ask.start_place = (data.get("start_place") or "") if going else ""
    ask.answered_at = now or timezone.now()
    ask.save()
    return ask


@dataclass
class TeamTally:
    team: SpecialTeam
    asks: list = field(default_factory=list)

    def count(self, answer: str) -> int:
        return sum(1 for a in self.asks if a.answer == answer)

    @property
    def asked(self) -> int:
        return len(self.asks)

    @property
    def answered(self) -> int:
        return sum(1 for a in self.asks if a.answer)

    @property
    def willing(self) -> int:
        return self.count(MemberAsk.Answer.WILLING)

    @property
    def conditional(self) -> int:
        return self.count(MemberAsk.Answer.CONDITIONAL)

    @property
    def not_willing(self) -> int:
        return self.count(MemberAsk.Answer.NOT_WILLING)

    @property
    def silent(self) -> int:
        return self.asked - self.answered


def tally(*, poll: Poll, agency, travel_minutes: int) -> list[TeamTally]:
    """Per targeted team, its members' answers; each willing member's arrival is their departure
    plus the agency's travel estimate (members' own starting points are not estimated yet)."""
    by_team = {t.pk: TeamTally(t) for t in targeted_teams(poll, agency)}
    for ask in MemberAsk.objects.filter(poll=poll, agency=agency).select_related("member"):
        ask.arrival = (
            ask.depart_minutes + travel_minutes if ask.depart_minutes is not None else None
        )
        by_team.setdefault(ask.team_id, TeamTally(ask.team)).asks.append(ask)
    return list(by_team.values())


def suggested_lines(tallies: list[TeamTally]) -> dict[int, dict]:
    """The agency's lines as the members' answers suggest them, per team with willing members:
    officers = members willing without conditions (conditional ones are the commander's call),
    departure = the latest of their departures, so every officer counted can leave by then and
    the line's arrival is honest for all of them."""
    suggested = {}
    for t in tallies:
        willing = [a for a in t.asks if a.answer == MemberAsk.Answer.WILLING]
        if willing:
            suggested[t.team.pk] = {
                "officers": len(willing),
                "depart_minutes": max(a.depart_minutes or 0 for a in willing),
            }
    return suggested


def tally_record(tallies: list[TeamTally], lines: list[dict]) -> dict:
    """What the members said beside what the commander sent, per team: kept with the version
    (the difference between the tally and the answer is the commander's, and recorded)."""
    given = {line["team"].pk: line["officers"] or 0 for line in lines}
    suggested = suggested_lines(tallies)
    return {
        t.team.name: {
            "asked": t.asked, "willing": t.willing, "conditional": t.conditional,
            "not_willing": t.not_willing, "silent": t.silent,
            "suggested": suggested.get(t.team.pk, {}).get("officers", 0),
            "given": given.get(t.team.pk, 0),
        }
        for t in tallies
        if t.asks
    }  # fmt: skip


def with_backing(tallies: list[TeamTally], lines: list[dict]) -> list[dict]:
    """The lines with `officers_backed`: as many of the line's officers as members of that team
    said they would go (without conditions)."""
    willing = {t.team.pk: t.willing for t in tallies}
    return [
        {**line, "officers_backed": min(line["officers"] or 0, willing.get(line["team"].pk, 0))}
        for line in lines
    ]


def member_away(*, ask: MemberAsk, until, reason: str) -> None:
    """The member says they are away until a date (or back: None): they are not asked by later
    polls until then, and their commander's roster shows it."""
    TeamMember.objects.filter(pk=ask.member_id).update(
        away_until=until, away_reason=(reason or "")[:100] if until else ""
    )
    audit.record("teammember.away", obj=ask.member, object_repr=f"member of {ask.team}",
                 changes={"until": until.isoformat() if until else None})  # fmt: skip
