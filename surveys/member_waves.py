"""A commander asking their members in waves for a number of willing officers (issue 20, item
5): the same rule as the agencies' waves (surveys.waves.project), inside one agency. The first
batch is twice the number wanted (team leaders first, then by name); after each batch's wait,
while fewer members are willing (without conditions, qualified) than wanted and the silent
times the yes-rate so far would not make up the difference, the next batch asks twice the
shortfall. It stops when enough are willing, when everyone eligible was asked, or when the
commander sends the agency's answer."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from readiness import audit

from . import members, replies, tally, waves
from .models import MemberCall, Poll, Reply

FACTOR = 2


def _batch(poll: Poll, agency, size: int) -> list:
    return list(members.eligible(poll, agency).order_by("-is_leader", "name", "pk")[:size])


@transaction.atomic
def call_start(*, poll: Poll, agency, wanted: int, answer_by, request=None) -> int:
    """Start asking in waves; returns how many members the first batch asked."""
    now = timezone.now()
    user = getattr(request, "user", None)
    call, created = MemberCall.objects.get_or_create(
        poll=poll, agency=agency,
        defaults={"wanted": wanted, "answer_by": answer_by, "last_wave_at": now,
                  "asked_by": user if user and user.is_authenticated else None},
    )  # fmt: skip
    if not created:
        raise members.AskClosed("your members are already being asked in waves for this poll")
    first = _batch(poll, agency, wanted * FACTOR)
    asked = members.members_forward(
        poll=poll, agency=agency, answer_by=answer_by, request=request, chosen=first
    )
    call.waves = [{"at": now.isoformat(), "asked": asked, "why": "first batch"}]
    call.save(update_fields=["waves"])
    audit.record("poll.members_waves", request=request, obj=poll,
                 changes={"agency": agency.code, "wanted": wanted, "asked": asked})  # fmt: skip
    return asked


def figures(call: MemberCall) -> dict:
    tallies = tally.tally(poll=call.poll, agency=call.agency)
    counted = sum(len(t.counted) for t in tallies)
    answered = sum(t.answered for t in tallies)
    silent = sum(t.silent for t in tallies)
    return {"wanted": call.wanted, "willing": counted, "answered": answered, "silent": silent,
            "projected": waves.project(counted, counted, answered, silent)}  # fmt: skip


def calls_advance(*, now=None) -> int:
    """The beat: each running call's rule, once; returns how many batches were sent."""
    now = now or timezone.now()
    sent = 0
    for call in MemberCall.objects.filter(
        state=MemberCall.State.RUNNING, poll__state=Poll.State.OPEN
    ).select_related("poll", "agency"):
        sent += advance(call, now=now) == "sent"
    return sent


@transaction.atomic
def advance(call: MemberCall, *, now=None) -> str:
    """ "covered", "done", "waiting", "holding" or "sent"."""
    now = now or timezone.now()
    call = MemberCall.objects.select_for_update().select_related("poll", "agency").get(pk=call.pk)
    if call.state != MemberCall.State.RUNNING:
        return "done"
    found = figures(call)
    if found["willing"] >= call.wanted:
        return _end(call, MemberCall.State.COVERED, found)
    answered = Reply.objects.filter(
        poll=call.poll, agency=call.agency, updated_at__gt=call.created_at
    ).exists()
    if answered or replies.reply_refusal(call.poll):  # the commander has answered, or too late
        return _end(call, MemberCall.State.DONE, found)
    if call.last_wave_at + timedelta(minutes=call.wait_minutes) > now:
        return "waiting"
    if found["projected"] >= call.wanted:
        return "holding"
    batch = _batch(call.poll, call.agency, (call.wanted - found["projected"]) * FACTOR)
    if not batch:
        return _end(call, MemberCall.State.DONE, found)
    asked = members.members_forward(poll=call.poll, agency=call.agency,
                                    answer_by=call.answer_by, chosen=batch, by="waves")  # fmt: skip
    call.waves = [*call.waves, {"at": now.isoformat(), "asked": asked, **found}]
    call.last_wave_at = now
    call.save(update_fields=["waves", "last_wave_at"])
    return "sent"


def _end(call: MemberCall, state: str, found: dict) -> str:
    call.state = state
    call.save(update_fields=["state"])
    audit.record("poll.members_waves_end", obj=call.poll,
                 changes={"agency": call.agency.code, "state": state, **found})  # fmt: skip
    return "covered" if state == MemberCall.State.COVERED else "done"
