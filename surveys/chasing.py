"""Chasing an open poll: reminders to the silent, escalation to alternate contacts, closing at
the deadline (with the sender's summary), extending, cancelling (with the stand-down), and
withdrawing a link. Celery beat runs polls_chase every minute. It hands new invitations to
delivery and sends reminders by the invitations' channel; it must not send invitations itself.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact
from readiness import audit

from . import channels, delivery, jobs, reply_notices
from .models import Invitation, Poll

logger = logging.getLogger(__name__)


def _withdraw_unsent(poll: Poll, reason: str) -> None:
    """Invitations still waiting are not sent after all (a worker holding one finishes it)."""
    poll.invitations.filter(state=Invitation.State.QUEUED).update(
        state=Invitation.State.FAILED, failure_reason=reason
    )


CLOSED_EARLY = "the poll closed before this was delivered"  # reopening sends these after all


class PollNotOpen(Exception):
    pass


def _lock_open(poll: Poll) -> Poll:
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if poll.state not in (Poll.State.OPEN, Poll.State.SENDING):
        raise PollNotOpen(poll.pk)
    return poll


@transaction.atomic
def poll_close(*, poll: Poll, request=None) -> Poll:
    """Close now: reply links stop working."""
    poll = _lock_open(poll)
    poll.state, poll.closed_at = Poll.State.CLOSED, timezone.now()
    poll.save(update_fields=["state", "closed_at", "updated_at"])
    _withdraw_unsent(poll, CLOSED_EARLY)
    audit.record("poll.close", request=request, obj=poll)
    return poll


@transaction.atomic
def poll_extend(*, poll: Poll, deadline, request=None) -> Poll:
    poll = _lock_open(poll)
    if deadline <= max(poll.deadline, timezone.now()):
        raise ValueError("The new deadline must be later than the current one and in the future.")
    before = poll.deadline
    poll.deadline = deadline
    poll.save(update_fields=["deadline", "updated_at"])
    audit.record(
        "poll.extend",
        request=request,
        obj=poll,
        changes=audit.diff({"deadline": before}, {"deadline": deadline}),
    )
    return poll


@transaction.atomic
def poll_cancel(*, poll: Poll, request) -> Poll:
    """Cancel an open poll and tell everyone asked to stand down, saying who cancelled and when."""
    poll = _lock_open(poll)
    poll.state, poll.cancelled_at, poll.cancelled_by = (
        Poll.State.CANCELLED,
        timezone.now(),
        request.user,
    )
    poll.save(update_fields=["state", "cancelled_at", "cancelled_by", "updated_at"])
    _withdraw_unsent(poll, "the poll was cancelled before this was delivered")
    audit.record("poll.cancel", request=request, obj=poll)
    jobs.after_commit("surveys.tasks.send_stand_down", poll.pk)
    return poll


def poll_send_stand_down(*, poll_id: int) -> int:
    """One stand-down email per address that was sent the poll."""
    poll = Poll.objects.select_related("cancelled_by", "created_by").get(pk=poll_id)
    sent = poll.invitations.filter(state=Invitation.State.SENT)
    addresses = sorted(set(sent.filter(channel="email").values_list("email", flat=True)))
    context = {"poll": poll, "cancelled_at": timezone.localtime(poll.cancelled_at)}
    body = render_to_string("surveys/email/stand_down.txt", context)
    messages = [
        EmailMultiAlternatives(
            subject=f"STAND DOWN: {poll.title} is cancelled", body=body, to=[address]
        )
        for address in addresses
    ]
    connection = mailers.default
    connection.send_messages(messages)
    return len(messages) + _text_stand_down(poll, sent.filter(channel="sms"))


def _text_stand_down(poll: Poll, invitations) -> int:
    """The stand-down by text, once per number that was texted the poll."""
    by = poll.cancelled_by.get_full_name() if poll.cancelled_by else "the coordinator"
    body = (
        f"STAND DOWN: {poll.title} is cancelled by {by}. Do not send officers; no answer is needed."
    )
    sent = 0
    with channels.SMS.sender() as send:
        for mobile in sorted(set(invitations.values_list("mobile", flat=True))):
            try:
                result = send(channels.providers.Text(to=mobile, body=body))
            except channels.Unreachable as exc:
                logger.warning("stand-down texts not sent, unreachable: %s", exc)
                break
            sent += result.outcome == channels.SENT
    return sent


def _silent(invitations):
    """Invitations whose agency has not answered the poll (through any of its contacts)."""
    answered = Invitation.objects.filter(
        poll=OuterRef("poll"), agency=OuterRef("agency"), replied_at__isnull=False
    )
    return invitations.filter(state=Invitation.State.SENT).exclude(Exists(answered))


def polls_chase(*, now=None) -> dict:
    """Close polls past their deadline, remind the silent, escalate to alternates.

    Every step claims its rows with a conditional UPDATE first, so several beat runs or workers
    at once send nothing twice. `now` is injectable for tests.
    """
    now = now or timezone.now()
    done = {"closed": 0, "reminded": 0, "escalated": 0, "digests": 0}
    for poll in Poll.objects.filter(state=Poll.State.OPEN, deadline__lte=now):
        if Poll.objects.filter(pk=poll.pk, state=Poll.State.OPEN).update(
            state=Poll.State.CLOSED, closed_at=now
        ):
            audit.record("poll.close", obj=poll, changes={"reason": "deadline"})
            jobs.after_commit("surveys.tasks.send_poll_summary", poll.pk)
            done["closed"] += 1
    # A poll whose waves covered the need told its silent agencies they need not answer.
    for poll in Poll.objects.filter(state=Poll.State.OPEN).exclude(waves_state="covered"):
        done["reminded"] += len(_claim_reminders(poll, now))
        done["escalated"] += _escalate(poll, now)
    for poll_id, since, until in reply_notices.claim_digests(now):
        jobs.after_commit("surveys.tasks.send_reply_digest", poll_id, since, until)
        done["digests"] += 1
    return done


def _claim_reminders(poll: Poll, now) -> list[int]:
    """Remind each silent contact once per reminder time that passed since they were last
    emailed. Times are deadline minus each reminder hour, so extending the deadline moves
    them; a reminder time before the invitation was sent (a late send, an escalation) is
    skipped rather than fired at once."""
    instants = [
        poll.deadline - timezone.timedelta(hours=h)
        for h in poll.reminder_hours_before
        if poll.deadline - timezone.timedelta(hours=h) <= now
    ]
    if not instants:
        return []
    latest = max(instants)
    due = _silent(poll.invitations.filter(sent_at__lt=latest, revoked_at__isnull=True)).filter(
        Q(last_reminded_at__isnull=True) | Q(last_reminded_at__lt=latest)
    )
    won = []
    for pk in due.values_list("pk", flat=True):
        # Claimed one by one: overlapping beat runs remind each contact once.
        if (
            Invitation.objects.filter(pk=pk)
            .filter(Q(last_reminded_at__isnull=True) | Q(last_reminded_at__lt=latest))
            .update(reminders_sent=F("reminders_sent") + 1, last_reminded_at=now)
        ):
            won.append(pk)
    if won:
        jobs.after_commit("surveys.tasks.send_reminders", won)
    return won


MANUAL_REMINDER_GAP = timezone.timedelta(minutes=10)


def poll_remind_silent(*, poll: Poll, request=None) -> int:
    """ "Remind the silent now": a reminder to everyone whose agency has not answered, unless
    they were emailed in the last ten minutes (a double click reminds once)."""
    if poll.state != Poll.State.OPEN:
        raise PollNotOpen(poll.pk)
    now = timezone.now()
    recent = now - MANUAL_REMINDER_GAP
    fresh = Q(last_reminded_at__isnull=True) | Q(last_reminded_at__lt=recent)
    won = []
    silent = _silent(poll.invitations.filter(revoked_at__isnull=True, sent_at__lt=recent))
    for pk in silent.filter(fresh).values_list("pk", flat=True):
        if (
            Invitation.objects.filter(pk=pk)
            .filter(fresh)
            .update(reminders_sent=F("reminders_sent") + 1, last_reminded_at=now)
        ):
            won.append(pk)
    audit.record("poll.remind", request=request, obj=poll, changes={"reminded": len(won)})
    if won:
        jobs.after_commit("surveys.tasks.send_reminders", won)
    return len(won)


def why_nobody_was_reminded(*, poll: Poll, now=None) -> str:
    """When "Remind the silent now" reminded nobody: why, and when it will be possible."""
    now = now or timezone.now()
    silent = _silent(poll.invitations.filter(revoked_at__isnull=True))
    agencies = silent.values("agency").distinct().count()
    if not agencies:
        waiting = poll.invitations.filter(revoked_at__isnull=True).exclude(
            state=Invitation.State.SENT
        )
        if waiting.exists() and not poll.invitations.filter(state=Invitation.State.SENT).exists():
            return "No invitation has been delivered yet: there is nobody to remind."
        return "Every agency asked has answered: there is nobody to remind."
    last = [
        max(at for at in (inv.sent_at, inv.last_reminded_at) if at)
        for inv in silent.only("sent_at", "last_reminded_at")
    ]
    possible = timezone.localtime(min(last) + MANUAL_REMINDER_GAP) if last else None
    minutes = int(MANUAL_REMINDER_GAP.total_seconds() // 60)
    return (
        f"Nobody was reminded: the contacts of the {agencies} silent agenc"
        f"{'y was' if agencies == 1 else 'ies were'} emailed less than {minutes} minutes ago."
        + (f" Reminding is possible again from {possible:%H:%M}." if possible else "")
    )


def reminders_send(*, invitation_ids: list[int]) -> int:
    """Send claimed reminders one by one, each by its invitation's channel; one refused address
    does not stop the others, and nothing is retried wholesale (the next reminder time, or a
    manual one, tries again)."""
    live = Invitation.objects.filter(
        pk__in=invitation_ids, poll__state=Poll.State.OPEN, revoked_at__isnull=True
    )
    sent = 0
    for name in sorted(set(live.values_list("channel", flat=True))):
        channel = channels.BY_NAME[name]
        invitations = list(channel.prefetch(live.filter(channel=name)))
        with channel.sender() as send:
            for invitation, message in channel.build(invitations, reminder=True):
                if isinstance(message, Exception):
                    continue  # logged by the channel
                try:
                    result = send(message)
                except channels.Unreachable as exc:
                    logger.warning("%s reminders not sent, unreachable: %s", name, exc)
                    break
                if result.outcome == channels.SENT:
                    sent += 1
                else:
                    logger.warning("reminder for invitation %s: %s", invitation.pk, result.reason)
    return sent


def _escalate(poll: Poll, now) -> int:
    if not poll.escalate_after_hours:
        return 0
    cutoff = now - timezone.timedelta(hours=poll.escalate_after_hours)
    if not poll.sent_at or poll.sent_at > cutoff:
        return 0
    answered = Invitation.objects.filter(
        poll=OuterRef("poll"), agency=OuterRef("agency"), replied_at__isnull=False
    )
    # Silent primaries, including those whose email bounced: that is when alternates matter most.
    due = (
        poll.invitations.filter(is_escalation=False, escalated_at__isnull=True)
        .filter(
            Q(state=Invitation.State.SENT, sent_at__lte=cutoff) | Q(state=Invitation.State.FAILED)
        )
        .exclude(Exists(answered))
        .select_related("agency")
    )
    created = []
    for primary in due:
        created += _escalate_one(poll, primary, now)
    delivery.queue([i.pk for i in created])
    if created:
        audit.record("poll.escalate", obj=poll, changes={"alternates": len(created)})
    return len(created)


def escalate_now(*, invitation: Invitation, reason: str, now=None) -> int:
    """Ask the agency's alternates at once (the primary's email bounced), unless it answered."""
    now = now or timezone.now()
    poll = invitation.poll
    if (
        poll.state != Poll.State.OPEN
        or poll.invitations.filter(agency=invitation.agency, replied_at__isnull=False).exists()
    ):
        return 0
    created = _escalate_one(poll, invitation, now)
    delivery.queue([i.pk for i in created])
    if created:
        audit.record("poll.escalate", obj=poll,
                     changes={"alternates": len(created), "because": reason[:200]})  # fmt: skip
    return len(created)


def _escalate_one(poll: Poll, primary: Invitation, now) -> list[Invitation]:
    with transaction.atomic():  # the claim and the new invitations stand or fall together
        # The poll's row first, as every flow that gives out reply codes takes it before their
        # lock (channels.sms.lock_reply_codes): the same order everywhere, so no deadlock.
        list(Poll.objects.select_for_update().filter(pk=poll.pk).values_list("pk"))
        if not Invitation.objects.filter(pk=primary.pk, escalated_at__isnull=True).update(
            escalated_at=now
        ):
            return []  # another run took it
        asked = poll.invitations.filter(agency=primary.agency).values_list("contact_id", flat=True)
        alternates = []
        for contact in primary.agency.contacts.filter(
            active=True, role=Contact.Role.ALTERNATE
        ).exclude(pk__in=list(asked)):
            alternates += channels.invitations_for(
                poll, primary.agency, contact, now=now, distance_km=primary.distance_km,
                travel_minutes=primary.travel_minutes, is_escalation=True,
            )  # fmt: skip
        # The primary's other channel is not a reason to escalate twice.
        poll.invitations.filter(agency=primary.agency, is_escalation=False).update(escalated_at=now)
        return channels.save_invitations(alternates)


def poll_send_summary(*, poll_id: int) -> bool:
    """After closing, the coordinator who sent the poll gets its figures, once."""
    poll = Poll.objects.select_related("created_by").get(pk=poll_id)
    if poll.summary_sent_at:
        return False
    invitations = poll.invitations.all()
    counts = {
        "agencies": invitations.values("agency").distinct().count(),
        "answered": invitations.filter(replied_at__isnull=False)
        .values("agency")
        .distinct()
        .count(),
        "failed": invitations.filter(state=Invitation.State.FAILED).count(),
    }
    body = render_to_string(
        "surveys/email/summary.txt",
        {
            "poll": poll,
            "counts": counts,
            "url": settings.SITE_URL + reverse("surveys:poll-detail", args=[poll.pk]),
        },
    )
    # Claimed only once sent: a failure leaves it for the retry (a rare duplicate beats a loss).
    mailers.default.send_messages(
        [
            EmailMultiAlternatives(
                subject=" ".join(f"Closed: {poll.title}".split()),
                body=body,
                to=[poll.created_by.email],
            )
        ]
    )
    Poll.objects.filter(pk=poll.pk, summary_sent_at__isnull=True).update(
        summary_sent_at=timezone.now()
    )
    return True


def invitation_revoke(*, invitation: Invitation, request=None) -> bool:
    """Withdraw an invitation's reply link (e.g. sent to the wrong person)."""
    won = Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if won:
        audit.record(
            "invitation.revoke", request=request, obj=invitation,
            object_repr=f"{invitation.agency} <{invitation.email}>",
        )  # fmt: skip
    return bool(won)
