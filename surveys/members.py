"""Asking the members of an agency's teams (issue 19): the commander forwards the poll to the
active members of the targeted teams (from the page, or by texting "<code> ASK"); Celery sends
each a personal link and reply code by their channels, and reminds the silent once before the
commander's own deadline; a member answers by link or text until the commander submits the
agency's answer or the poll closes. The tally is surveys.tally; nothing here counts on a
dashboard: the commander's submitted answer does."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from agencies.models import TeamMember
from readiness import audit, bulk
from readiness.db import Lookup

from . import geo, jobs, replies, tally
from .channels import providers, sms
from .models import Invitation, MemberAsk, MemberLink, Poll, Reply

SEND_TASK = "surveys.tasks.send_member_asks"
REMIND_TASK = "surveys.tasks.send_member_reminders"
CHUNK = 100  # asks per task: 500 members are five tasks that several workers share
STUCK_AFTER = timedelta(minutes=2)  # a claim this old belongs to a dead worker
OPEN = (Poll.State.OPEN, Poll.State.SENDING)


class AskClosed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def default_answer_by(poll: Poll, now=None):
    """Well before the poll's deadline: halfway there, on the quarter hour; never sooner than
    a quarter of an hour from now (nor after the deadline) when the poll ends soon."""
    now = now or timezone.now()
    moment = now + (poll.deadline - now) / 2
    moment = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    return min(max(moment, now + timedelta(minutes=15)), poll.deadline)


def eligible(poll: Poll, agency):
    """The members a forward would ask: active on a targeted team's roster, not asked by this
    poll yet, not away (leave, injury, training)."""
    asked = MemberAsk.objects.filter(poll=poll).values("member_id")
    return (
        TeamMember.objects.filter(team__in=tally.targeted_teams(poll, agency), active=True)
        .exclude(pk__in=asked)
        .exclude(away_until__gte=timezone.localdate())
        .select_related("team")
    )


@transaction.atomic
def members_forward(
    *, poll: Poll, agency, answer_by, request=None, by: str = "", chosen=None
) -> int:
    """Ask the eligible members (every one, or those `chosen` among them); returns how many
    were asked. Sent by Celery after commit, CHUNK asks per task."""
    # The poll's row lock: two forwards at once (the page and a text, a double submit) ask
    # each member once; the second waits, then finds them asked.
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if replies.reply_refusal(poll):
        raise AskClosed("the poll no longer takes answers")
    members = eligible(poll, agency)
    if chosen is not None:
        members = members.filter(pk__in=[m.pk for m in chosen])
    now, user = timezone.now(), getattr(request, "user", None)
    new = [
        MemberAsk(poll=poll, agency=agency, team=m.team, member=m, asked_at=now,
                  answer_by=answer_by, asked_by=user if user and user.is_authenticated else None)
        for m in members
    ]  # fmt: skip
    _assign_codes(new, {m.pk: m.mobile for m in members})
    new = MemberAsk.objects.bulk_create(new, batch_size=500)
    if new:
        audit.record("poll.members_forward", request=request, obj=poll,
                     changes={"agency": agency.code, "members": len(new), "by": by or None,
                              "answer_by": answer_by.isoformat()})  # fmt: skip
        ids = [a.pk for a in new]
        for start in range(0, len(ids), CHUNK):
            jobs.after_commit(SEND_TASK, ids[start : start + CHUNK])
    return len(new)


def _assign_codes(asks: list[MemberAsk], mobiles: dict[int, str]) -> None:
    """A reply code per ask texted, that no open ask or invitation to the same number holds
    (a commander may also be on a roster): the number and the code find the ask."""
    numbers = {n for n in mobiles.values() if n}
    if not numbers:
        return
    sms.lock_reply_codes()
    taken: dict[str, set[str]] = {n: set() for n in numbers}
    pairs = [
        *MemberAsk.objects.filter(member__mobile__in=numbers, poll__state__in=OPEN)
        .order_by()
        .values_list("member__mobile", "reply_code"),
        *Invitation.objects.filter(mobile__in=numbers, poll__state__in=OPEN)
        .order_by()
        .values_list("mobile", "reply_code"),
    ]
    for number, code in pairs:
        taken[number].add(code)
    for ask in asks:
        number = mobiles.get(ask.member_id)
        if number:
            while (code := f"{secrets.randbelow(9000) + 1000}") in taken[number]:
                pass
            taken[number].add(code)
            ask.reply_code = code


def _link(ask: MemberAsk, now) -> str:
    """A new personal link (only its hash kept; earlier ones keep working)."""
    token = secrets.token_urlsafe(16)
    MemberLink.objects.create(ask_id=ask.pk, token_hash=MemberAsk.hash_token(token), created_at=now)
    return settings.SITE_URL + reverse("surveys:member-answer", args=[token])


def member_asks_send(*, ask_ids: list[int], now=None) -> int:
    """Send each member their personal link by email and by text (whichever the roster has),
    once: each ask is claimed (queued -> sending) before its messages go, then marked sent, or
    failed with the reason when none of them could be sent. A worker killed between the claim
    and the mark leaves it `sending`; the sweep gives it back after STUCK_AFTER."""
    sent = 0
    queued = MemberAsk.objects.filter(pk__in=ask_ids, state=MemberAsk.State.QUEUED)
    for ask in queued.select_related("member", "team", "poll", "agency"):
        now = timezone.now()
        if replies.reply_refusal(ask.poll) or _agency_answered(ask):
            MemberAsk.objects.filter(pk=ask.pk, state=MemberAsk.State.QUEUED).update(
                state=MemberAsk.State.FAILED, failure_reason="not sent: no longer taken"
            )
            continue
        if not MemberAsk.objects.filter(pk=ask.pk, state=MemberAsk.State.QUEUED).update(
            state=MemberAsk.State.SENDING, claimed_at=now
        ):
            continue  # another run took it
        failure = _send(ask, _link(ask, now) if _reachable(ask) else "", reminder=False)
        # Marked only while the claim is still ours (the sweep may have given it back).
        MemberAsk.objects.filter(pk=ask.pk, state=MemberAsk.State.SENDING, claimed_at=now).update(
            state=MemberAsk.State.FAILED if failure else MemberAsk.State.SENT,
            failure_reason=failure[:300], sent_at=None if failure else now,
        )  # fmt: skip
        sent += not failure
    return sent


def _reachable(ask: MemberAsk) -> bool:
    return bool(ask.member.email or ask.member.mobile)


def _send(ask: MemberAsk, url: str, *, reminder: bool) -> str:
    """'' when at least one channel took the message, else why none did."""
    if not url:
        return "no email or mobile on the roster"
    failures = [f for f in (_email(ask, url, reminder), _text(ask, url, reminder)) if f]
    return "; ".join(failures) if len(failures) == _reachable_count(ask) else ""


def _reachable_count(ask: MemberAsk) -> int:
    return bool(ask.member.email) + bool(ask.member.mobile)


def _email(ask: MemberAsk, url: str, reminder: bool) -> str:
    """'' when sent (or no address), else why not: one refused address costs only itself."""
    if not ask.member.email:
        return ""
    context = {"ask": ask, "url": url, "reminder": reminder,
               "answer_by": timezone.localtime(ask.answer_by)}  # fmt: skip
    body = render_to_string("surveys/email/member_ask.txt", context)
    subject = f"{'Reminder: ' if reminder else ''}{ask.agency.name} asks: would you respond? "
    try:
        message = EmailMultiAlternatives(
            subject=" ".join(f"{subject}{ask.poll.title}".split()), body=body,
            to=[ask.member.email],
        )  # fmt: skip
        mailers.default.send_messages([message])
    except Exception as exc:
        return f"email: {exc}"
    return ""


def text_body(ask: MemberAsk, url: str, *, reminder: bool = False) -> str:
    local = timezone.localtime(ask.answer_by)
    code = ask.reply_code
    how = (
        f"reply {code} Y <minutes to leave>, {code} N, or {code} C <minutes> <conditions>. Or: "
        if code else "answer: "
    )  # fmt: skip
    return (
        f"{'REMINDER: ' if reminder else ''}{ask.agency.name} asks: would you go with "
        f"{ask.team.name} to {ask.poll.destination_name} "
        f"({ask.poll.get_purpose_display().lower()})? By {local:%a %H:%M} {how}{url}"
    )


def _text(ask: MemberAsk, url: str, reminder: bool) -> str:
    if not ask.member.mobile:
        return ""
    if ask.member.sms_stopped_at:
        return "text: the member texted STOP"
    body = text_body(ask, url, reminder=reminder)
    try:
        result = providers.provider().send(providers.Text(to=ask.member.mobile, body=body))
    except Exception as exc:  # the provider unreachable, say
        return f"text: {exc}"
    return "" if result.outcome == "sent" else f"text: {result.reason}"


def asks_requeue_stuck(*, now=None) -> int:
    """The sweep: asks claimed by a worker that died before marking them go back to the queue,
    and queued asks whose task was lost are sent again (the claim sends each once)."""
    now = now or timezone.now()
    MemberAsk.objects.filter(
        state=MemberAsk.State.SENDING, claimed_at__lt=now - STUCK_AFTER
    ).update(state=MemberAsk.State.QUEUED)
    # Queued and not dispatched in the last STUCK_AFTER (claimed_at marks a dispatch too), so a
    # backlog is not queued again every minute.
    ids = list(
        MemberAsk.objects.filter(
            Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - STUCK_AFTER),
            state=MemberAsk.State.QUEUED,
            asked_at__lt=now - STUCK_AFTER,
            poll__state__in=OPEN,
        ).values_list("pk", flat=True)[:5000]
    )
    MemberAsk.objects.filter(pk__in=ids).update(claimed_at=now)
    for start in range(0, len(ids), CHUNK):
        jobs.after_commit(SEND_TASK, ids[start : start + CHUNK])
    return len(ids)


def members_chase(*, now=None) -> int:
    """Remind once each member still silent halfway between their message and the commander's
    deadline, while the poll is open and the agency has not answered. Claimed by a conditional
    UPDATE (reminded_at), so beats running at once remind nobody twice."""
    now = now or timezone.now()
    answered = Reply.objects.filter(
        poll=OuterRef("poll"), agency=OuterRef("agency"), updated_at__gt=OuterRef("asked_at")
    )
    due = MemberAsk.objects.filter(
        state=MemberAsk.State.SENT, answer="", reminded_at=None, poll__state=Poll.State.OPEN,
        answer_by__gt=now, sent_at__lte=now - (F("answer_by") - now),
    ).exclude(Exists(answered))  # fmt: skip
    due = due.exclude(poll__waves_state=Poll.Waves.COVERED)  # told the need is met
    # Each ask claimed by its own conditional UPDATE: of two beats at once, one reminds it.
    claimed = [
        pk for pk in due.values_list("pk", flat=True)[:5000]
        if MemberAsk.objects.filter(pk=pk, reminded_at=None).update(reminded_at=now)
    ]  # fmt: skip
    for start in range(0, len(claimed), CHUNK):
        jobs.after_commit(REMIND_TASK, claimed[start : start + CHUNK])
    return len(claimed)


def member_reminders_send(*, ask_ids: list[int]) -> int:
    sent = 0
    for ask in MemberAsk.objects.filter(pk__in=ask_ids, answer="").select_related(
        "member", "team", "poll", "agency"
    ):
        if replies.reply_refusal(ask.poll) or _agency_answered(ask) or not _reachable(ask):
            continue
        sent += not _send(ask, _link(ask, timezone.now()), reminder=True)
    return sent


# The hash is unique: no ORDER BY, which on a select_related query costs a third of it.
# What the member's pages and answer use of the poll, the agencies, the team and the member (the
# ask's own fields, all): five wide rows cost more to build than to fetch, and a link's page is
# the busiest of a call-out. A field left out would be read by a query of its own, which
# tests/surveys/test_members.py counts.
_LINK_FIELDS = (
    "ask__poll__title", "ask__poll__purpose", "ask__poll__state", "ask__poll__deadline",
    "ask__poll__requesting_person", "ask__poll__requesting_agency__name",
    "ask__poll__destination_name",
    "ask__poll__destination_latitude", "ask__poll__destination_longitude",
    "ask__agency__name", "ask__team__name",
    "ask__member__name", "ask__member__email", "ask__member__mobile", "ask__member__home_base",
    "ask__member__away_until", "ask__member__away_reason", "ask__member__sms_stopped_at",
    "ask__member__agency__name", "ask__member__agency__latitude",
    "ask__member__agency__longitude",
)  # fmt: skip

_BY_TOKEN = Lookup(
    MemberLink,
    lambda token_hash: (
        MemberLink.objects.select_related(
            "ask__poll__requesting_agency", "ask__agency", "ask__team", "ask__member__agency"
        )
        .only("ask", *(f"ask__{f.name}" for f in MemberAsk._meta.concrete_fields), *_LINK_FIELDS)
        .filter(token_hash=token_hash)
        .order_by()[:1]
    ),
)


def ask_by_token(token: str) -> MemberAsk | None:
    link = _BY_TOKEN.first(MemberAsk.hash_token(token))
    return link.ask if link else None


def _agency_answered(ask: MemberAsk) -> bool:
    return Reply.objects.filter(
        poll=ask.poll_id, agency=ask.agency_id, updated_at__gt=ask.asked_at
    ).exists()


def ask_refusal(ask: MemberAsk) -> str:
    """Why this member's answer is no longer taken ("" while it is)."""
    reason = replies.reply_refusal(ask.poll)
    if reason:
        return "The poll is closed." if reason != "cancelled" else "The poll was cancelled."
    if _agency_answered(ask):
        return "Your commander has already sent the agency's answer."
    return ""


def start_travel(ask: MemberAsk, poll: Poll) -> tuple[int, str]:
    """Minutes from where the member starts to the destination, and what they were timed from:
    their home base or a typed place when the registry can place it, else their station (their
    own agency's address), saying so."""
    place = {MemberAsk.Start.HOME: ask.member.home_base,
             MemberAsk.Start.OTHER: ask.start_place}.get(ask.start, "")  # fmt: skip
    point = geo.locate(place) if place else None
    label = place
    if point is None:
        station = ask.member.agency
        point, label = (station.latitude, station.longitude), f"the {station.name} station"
        if place:
            label = f"the station; “{place}” not found"
    distance = geo.distance_km(*point, poll.destination_latitude, poll.destination_longitude)
    return geo.travel_minutes(distance), label[:200]


def member_answer(*, ask: MemberAsk, data: dict, now=None, via: str = "link") -> MemberAsk:
    """Save a member's answer: one conditional UPDATE that takes it only while the poll is open
    and the agency has not answered since the member was asked (the commander's submit ends
    the members' answers), and its audit row: one statement on PostgreSQL (_TAKE)."""
    now = now or timezone.now()
    going = data["answer"] != MemberAsk.Answer.NOT_WILLING
    ask.answer, ask.note = data["answer"], data.get("note") or ""
    ask.depart_minutes = data.get("depart_minutes") if going else None
    ask.start = (data.get("start") or MemberAsk.Start.STATION) if going else ""
    ask.start_place = (data.get("start_place") or "") if going else ""
    ask.travel_minutes, ask.travel_from = start_travel(ask, ask.poll) if going else (None, "")
    ask.answered_at, ask.answered_via = now, via
    at = connection.ops.adapt_datetimefield_value(now)
    values = [at if name == "answered_at" else getattr(ask, name) for name in ANSWER_FIELDS]
    event = audit.event("memberask.answer", obj=ask, object_repr=f"member of {ask.team}",
                        changes={"answer": ask.answer, "via": via})  # fmt: skip
    if not bulk.update_then_insert((_TAKE, [*values, ask.pk, Poll.State.OPEN, at]), event):
        raise AskClosed(ask_refusal(ask) or "The poll is closed.")
    return ask


ANSWER_FIELDS = ("answer", "note", "depart_minutes", "start", "start_place", "travel_minutes",
                 "travel_from", "answered_at", "answered_via")  # fmt: skip
# The answer is taken only while the poll is open and before its deadline, and while the agency
# has not answered since the member was asked (the commander's submit ends the members'
# answers); written in SQL once, with its audit row in the same statement (bulk.py).
_ASK, _POLL, _REPLY = (m._meta.db_table for m in (MemberAsk, Poll, Reply))
_TAKE = f"""
    UPDATE {_ASK} SET {", ".join(f"{name} = %s" for name in ANSWER_FIELDS)}
    WHERE id = %s
      AND EXISTS (SELECT 1 FROM {_POLL} p WHERE p.id = {_ASK}.poll_id AND p.state = %s
                  AND p.deadline > %s)
      AND NOT EXISTS (SELECT 1 FROM {_REPLY} r WHERE r.poll_id = {_ASK}.poll_id
                      AND r.agency_id = {_ASK}.agency_id AND r.updated_at > {_ASK}.asked_at)
"""  # noqa: S608 (the tables' names only; every value is a parameter)


def member_away(*, ask: MemberAsk, until, reason: str) -> None:
    """The member says they are away until a date (or back: None): they are not asked by later
    polls until then, and their commander's roster shows it."""
    TeamMember.objects.filter(pk=ask.member_id).update(
        away_until=until, away_reason=(reason or "")[:100] if until else ""
    )
    audit.record("teammember.away", obj=ask.member, object_repr=f"member of {ask.team}",
                 changes={"until": until.isoformat() if until else None})  # fmt: skip
