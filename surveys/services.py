"""Writes for polls: send, and deliver invitations. Views, tasks and the API call these."""

import contextlib
import copy
import dataclasses
import datetime
import logging
import math
import secrets
import smtplib
import socket
import uuid

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
    When,
)
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from agencies.models import Contact, SpecialTeam
from readiness import audit

from . import selectors
from .geo import travel_minutes
from .models import Invitation, InvitationLink, Poll, Reply, ReplyLine, ReplyVersion

DELIVERY_CHUNK = 100  # invitations per Celery task
logger = logging.getLogger(__name__)


class PollNotDraft(Exception):
    pass


class PollNotSendable(Exception):
    """Nothing sensible would be sent; the message says why."""


def poll_create(*, form, request) -> Poll:
    """Save a valid compose form (the page's or the API's) as a draft of the requester."""
    form.instance.created_by = request.user
    poll = form.save()
    audit.record("poll.create", request=request, obj=poll)
    return poll


def poll_update(*, form, request) -> Poll:
    """Save a valid compose form over a draft; PollNotDraft if it was sent meanwhile."""
    with transaction.atomic():
        # Lock and look again: another coordinator may have sent it meanwhile.
        if Poll.objects.select_for_update().get(pk=form.instance.pk).state != Poll.State.DRAFT:
            raise PollNotDraft(form.instance.pk)
        poll = form.save()
    audit.record("poll.update", request=request, obj=poll,
                 changes={"fields": sorted(form.changed_data)})  # fmt: skip
    return poll


@transaction.atomic
def poll_send(*, poll: Poll, request=None) -> int:
    """Create every invitation of a draft poll in one transaction, then queue delivery.

    One invitation per targeted agency, to its primary contact, with the distance and travel
    estimate computed once. Pressing Send twice sends once: the second call finds the poll no
    longer a draft. Returns the number of invitations.
    """
    from . import tasks

    # Lock the poll: two concurrent sends must not both see a draft.
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if poll.state != Poll.State.DRAFT:
        raise PollNotDraft(poll.pk)
    if poll.deadline <= timezone.now():
        raise PollNotSendable("The deadline has passed: set a later one before sending.")
    invitations = [
        Invitation(
            poll=poll,
            agency=agency,
            contact=agency.primary_contacts[0],
            email=agency.primary_contacts[0].email,
            distance_km=round(agency.distance_km, 1),
            travel_minutes=travel_minutes(agency.distance_km),
        )
        for agency in selectors.poll_recipients(poll=poll)
        if agency.primary_contacts  # the preview warns about the others
    ]
    if not invitations:
        raise PollNotSendable("No targeted agency has a usable contact: nobody would be asked.")
    Invitation.objects.bulk_create(invitations, batch_size=1000)
    poll.state = Poll.State.OPEN
    poll.sent_at = timezone.now()
    poll.save(update_fields=["state", "sent_at", "updated_at"])
    audit.record("poll.send", request=request, obj=poll, changes={"invitations": len(invitations)})
    ids = list(Invitation.objects.filter(poll=poll).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), DELIVERY_CHUNK):
        tasks.queue_delivery(ids[start : start + DELIVERY_CHUNK])
    return len(ids)


# Delivery ---------------------------------------------------------------------------------------


class TransientFailure(Exception):
    """Worth trying again later (a 4xx reply, a refused or dropped connection)."""


class PermanentFailure(Exception):
    """Will not get better by retrying (a 5xx reply: no such mailbox, policy refusal)."""


def classify_smtp_error(exc: Exception) -> Exception:
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        code = min(codes) if codes else None
    if code is not None and 500 <= code < 600:
        return PermanentFailure(f"{code} {_smtp_text(exc)}".strip())
    if isinstance(exc, smtplib.SMTPException | OSError | socket.timeout) or code is not None:
        return TransientFailure(f"{code or ''} {_smtp_text(exc) or exc}".strip())
    return PermanentFailure(f"could not send: {exc!r}")


def _smtp_text(exc) -> str:
    message = getattr(exc, "smtp_error", b"")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        message = b"; ".join(m for _, m in exc.recipients.values())
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


# Attempts per invitation: the first try and five retries, backing off 30 s, 1, 2, 4, 8 minutes.
MAX_ATTEMPTS = 6
RETRY_BACKOFF = (30, 60, 120, 240, 480)  # seconds after the 1st, 2nd, ... failed attempt
# A worker refreshes its claim at least this often while it goes through a chunk; a claim not
# refreshed for STALE_CLAIM belongs to a worker that died, and the sweep takes it back.
# The longest a live worker goes without refreshing is one SMTP connection set up plus one
# message (about six socket operations, each up to EMAIL_TIMEOUT): STALE_CLAIM stays above that.
CLAIM_HEARTBEAT = timezone.timedelta(seconds=15)
STALE_CLAIM = timezone.timedelta(
    seconds=max(120, 7 * settings.MAILERS["default"].get("OPTIONS", {}).get("timeout", 15))
)
# Queued and never picked up: its task may be waiting behind a large poll's.
NEVER_CLAIMED = timezone.timedelta(minutes=15)


def _open_polls():
    return Poll.objects.filter(state=Poll.State.OPEN).values("pk")


def invitation_claim(*, invitation_id: int) -> bool:
    """Take one invitation for sending. Only one worker wins; a sent one is never taken again."""
    return bool(invitations_claim(invitation_ids=[invitation_id])[1])


def invitations_claim(
    *, invitation_ids: list[int], claimed_by: str = "", task_id: str = "", backoff: bool = True
):
    """Take these invitations for sending, in one UPDATE: the queued ones that are due, and
    those a dead predecessor of this very task (the same task id, re-delivered after its
    worker died) still holds.

    Only invitations of an open poll whose link was not withdrawn are taken. Returns the claim
    and the ids won; every later write is scoped to that claim, so a worker that lost its rows
    to the sweep cannot overwrite another worker's. `backoff=False` ignores retry times (the
    embedded default, with no broker to wait through).
    """
    now = timezone.now()
    claim = uuid.uuid4().hex
    takeable = Q(state=Invitation.State.QUEUED)
    if backoff:
        takeable &= Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    if task_id:
        takeable |= Q(state=Invitation.State.SENDING, claimed_by__endswith=f" {task_id}")
    # poll__in a subquery, not a join: PostgreSQL then re-checks every condition on a row
    # another claimer updated meanwhile (a join would make Django UPDATE ... WHERE id IN (...),
    # and two claimers could both win the same row).
    Invitation.objects.filter(
        takeable, pk__in=invitation_ids, poll__in=_open_polls(), revoked_at__isnull=True
    ).update(
        state=Invitation.State.SENDING, claim=claim, claimed_by=claimed_by[:300], claimed_at=now
    )
    won = Invitation.objects.filter(
        pk__in=invitation_ids, state=Invitation.State.SENDING, claim=claim
    )
    return claim, list(won.values_list("pk", flat=True))


def _for_email(invitations):
    """Everything the email shows, loaded up front (no query per invitation)."""
    return invitations.select_related(
        "poll__created_by", "poll__requesting_agency", "poll__needed_team_type", "agency",
        "contact",
    ).prefetch_related(
        Prefetch(
            "agency__teams",
            queryset=SpecialTeam.objects.filter(active=True).select_related("team_type"),
            to_attr="active_teams",
        ),
        Prefetch(
            "agency__contacts",
            queryset=Contact.objects.filter(role=Contact.Role.PRIMARY),
            to_attr="primary_contacts",
        ),
    )  # fmt: skip


def invitation_emails(
    invitations: list[Invitation], *, reminder: bool = False
) -> list[EmailMultiAlternatives]:
    """The emails for these invitations, each with a fresh secret reply link."""
    built = _build_emails(invitations, reminder=reminder)
    for _, message in built:
        if isinstance(message, Exception):
            raise message
    return [message for _, message in built]


def _build_emails(invitations: list[Invitation], *, reminder: bool = False) -> list[tuple]:
    """[(invitation, email or the exception that stopped building it)], each email with a fresh
    secret reply link: one that cannot be built costs only itself.

    Only the hash of a link is stored (saved here, before anything is sent). Earlier links of
    the same invitation keep working until the poll ends: a message sent twice (the server
    stored it, then dropped the connection), a reminder, or an earlier email forwarded.
    """
    tokens = {inv.pk: secrets.token_urlsafe(32) for inv in invitations}  # 256 bits each
    now = timezone.now()
    for inv in invitations:
        inv.token_hash = Invitation.hash_token(tokens[inv.pk])
    Invitation.objects.bulk_update(invitations, ["token_hash"], batch_size=500)
    InvitationLink.objects.bulk_create(
        (InvitationLink(invitation=inv, token_hash=inv.token_hash, created_at=now)
         for inv in invitations),
        batch_size=500,
    )  # fmt: skip
    targets = {}  # the teams each email lists are those the poll targets
    built = []
    for inv in invitations:
        try:
            if inv.poll_id not in targets:
                targets[inv.poll_id] = selectors.Targets.of(inv.poll)
            built.append((inv, _email(inv, tokens[inv.pk], reminder=reminder,
                                      targets=targets[inv.poll_id])))  # fmt: skip
        except Exception as exc:
            logger.exception("invitation %s: the email could not be built", inv.pk)
            built.append((inv, exc))
    return built


def _targeted(team, targets) -> bool:
    if not targets.type_ids and not targets.levels:
        return True
    return team.team_type_id in targets.type_ids or (team.team_type_id, team.level) in set(
        targets.levels
    )


def _email(
    invitation: Invitation, token: str, *, reminder: bool, targets
) -> EmailMultiAlternatives:
    poll = invitation.poll
    primaries = invitation.agency.primary_contacts
    context = {
        "poll": poll,
        "invitation": invitation,
        "agency": invitation.agency,
        "contact": invitation.contact,
        "teams": [t for t in invitation.agency.active_teams if _targeted(t, targets)],
        "primary": primaries[0] if invitation.is_escalation and primaries else None,
        "reply_url": settings.SITE_URL + reverse("surveys:reply", args=[token]),
        "deadline": timezone.localtime(poll.deadline),
        "reminder": reminder,
    }
    subject = f"{poll.get_purpose_display()}: {poll.title}"
    if reminder:
        subject = f"Reminder: {subject}"
    elif invitation.is_escalation:
        subject = f"No answer yet from {invitation.agency.name}: {subject}"
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # names from a CSV may carry line breaks
        body=render_to_string("surveys/email/invitation.txt", context),
        to=[invitation.email],
    )
    message.attach_alternative(
        render_to_string("surveys/email/invitation.html", context), "text/html"
    )
    return message


@dataclasses.dataclass
class DeliveryOutcome:
    """What is left of a chunk after one pass: the invitations still queued for a retry, and
    when the earliest of them is due."""

    pending: list[int] = dataclasses.field(default_factory=list)
    next_at: datetime.datetime | None = None

    def countdown(self, now=None) -> int:
        if self.next_at is None:
            return 0
        return max(0, math.ceil((self.next_at - (now or timezone.now())).total_seconds()))


class _Chunk:
    """One claim's rows, written one outcome at a time (each scoped to the claim)."""

    def __init__(self, claim: str):
        self.mine = Invitation.objects.filter(state=Invitation.State.SENDING, claim=claim)
        self.beat = timezone.now()

    def heartbeat(self) -> None:
        """Keep the claim fresh while the chunk goes on, so the sweep can tell a slow worker
        from a dead one within STALE_CLAIM."""
        now = timezone.now()
        if now - self.beat >= CLAIM_HEARTBEAT:
            self.mine.update(claimed_at=now)
            self.beat = now

    def begin(self, pk: int) -> bool:
        """About to hand it to the server: count the attempt (a worker killed now has tried
        it) and make sure the claim still holds (a worker stalled past STALE_CLAIM has lost it
        to the sweep, and must not send it)."""
        return bool(self.mine.filter(pk=pk).update(claimed_at=timezone.now(),
                                                   attempts=F("attempts") + 1))  # fmt: skip

    def sent(self, pk: int) -> None:
        self.mine.filter(pk=pk).update(
            state=Invitation.State.SENT, sent_at=timezone.now(), failure_reason="",
            next_attempt_at=None, claim="",
        )  # fmt: skip

    def failed(self, pk: int, reason: str) -> None:
        self.mine.filter(pk=pk).update(
            state=Invitation.State.FAILED, failure_reason=reason[:500], next_attempt_at=None,
            claim="",
        )  # fmt: skip

    def transient(self, pks: list[int], reason: str) -> None:
        """Tried and not taken, for a reason that may pass: back in the queue with its own
        back-off, or failed for good once it has had its attempts. One statement."""
        now = timezone.now()
        due = [
            When(attempts=tried, then=Value(now + timezone.timedelta(seconds=seconds)))
            for tried, seconds in enumerate(RETRY_BACKOFF, start=1)
        ]
        self.mine.filter(pk__in=pks).update(
            state=Case(
                When(attempts__gte=MAX_ATTEMPTS, then=Value(Invitation.State.FAILED)),
                default=Value(Invitation.State.QUEUED),
            ),
            next_attempt_at=Case(*due, default=None, output_field=DateTimeField()),
            failure_reason=reason[:500],
            claim="",
        )

    def unreachable(self, pks: list[int], reason: str) -> None:
        """The server could not be reached: each of these was tried, and goes back."""
        self.mine.filter(pk__in=pks).update(attempts=F("attempts") + 1)
        self.transient(pks, reason)

    def release(self) -> None:
        """Not tried (a crash before its turn): back in the queue."""
        self.mine.update(state=Invitation.State.QUEUED, claim="")


def invitations_deliver(
    *, invitation_ids: list[int], claimed_by: str = "", task_id: str = "", backoff: bool = True
) -> DeliveryOutcome:
    """Send the invitations this worker can claim, over one SMTP connection.

    Each one is marked sent the moment the server accepts it, so a worker killed mid-chunk
    leaves at most the message in flight to be sent again. A failure costs only the invitation
    it happened to: a 5xx or a message that cannot be built fails it with the reason; a 4xx or a
    dropped connection puts it back with its own back-off (and fails it after MAX_ATTEMPTS), and
    the worker reconnects and goes on with the rest. Only when the server cannot be reached at
    all is every invitation still waiting charged an attempt. A task run twice sends nothing
    twice. Returns what is still queued of these invitations, and when it is due.
    """
    claim, claimed = invitations_claim(
        invitation_ids=invitation_ids, claimed_by=claimed_by, task_id=task_id, backoff=backoff
    )
    if claimed:
        _deliver_claimed(claim, claimed)
    left = Invitation.objects.filter(pk__in=invitation_ids, state=Invitation.State.QUEUED)
    # Queued on a poll that closed, or with its link withdrawn, meanwhile: never to be sent.
    left.exclude(poll__in=_open_polls()).update(
        state=Invitation.State.FAILED, failure_reason="not sent: the poll ended first"
    )
    left.filter(revoked_at__isnull=False).update(
        state=Invitation.State.FAILED, failure_reason="not sent: the link was withdrawn"
    )
    rows = list(left.values_list("pk", "next_attempt_at"))
    due = [at for _, at in rows if at is not None]
    return DeliveryOutcome(pending=sorted(pk for pk, _ in rows), next_at=min(due) if due else None)


def _deliver_claimed(claim: str, claimed: list[int]) -> None:
    chunk = _Chunk(claim)
    invitations = list(_for_email(Invitation.objects.filter(pk__in=claimed).order_by("pk")))
    todo = []
    for invitation, message in _build_emails(invitations):
        if isinstance(message, Exception):
            chunk.failed(invitation.pk, f"could not build the email: {message!r}")
        else:
            todo.append((invitation, message))
    connection = mailers.default
    try:
        _send_all(connection, chunk, todo)
    except BaseException:
        # Anything unexpected (a database error, the task's time limit): release what was not
        # tried, so a retry or the sweep takes it at once.
        chunk.release()
        raise
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _send_all(connection, chunk: _Chunk, todo: list) -> None:
    def failed(invitation, failure):
        if isinstance(failure, TransientFailure):
            chunk.transient([invitation.pk], str(failure))
        else:
            # A 5xx refusal, or a message that cannot be sent at all (a bad header):
            # retrying would not help, and it must not hold up the rest of the chunk.
            chunk.failed(invitation.pk, str(failure))

    _send_each(
        connection, todo,
        begin=lambda invitation: chunk.begin(invitation.pk),
        sent=lambda invitation: chunk.sent(invitation.pk),
        failed=failed,
        unreachable=lambda rest, failure: chunk.unreachable([i.pk for i in rest], str(failure)),
        before_each=chunk.heartbeat,
    )  # fmt: skip


def _send_each(
    connection, todo: list, *, sent, failed, unreachable, begin=None, before_each=None
) -> None:
    """Send [(item, message)] one by one over `connection`, reporting each outcome. A failure
    costs only its own item: when a recipient's server drops the connection, reconnect and go
    on with the rest. Only a server that cannot be reached at all stops the round, and
    `unreachable` gets every item still waiting (each was tried). `begin(item)` false: the item
    is no longer ours to send (skipped)."""
    opened = False
    for index, (item, message) in enumerate(todo):
        if before_each:
            before_each()
        if not opened:
            try:
                connection.open()
            except SoftTimeLimitExceeded:
                raise
            except (smtplib.SMTPException, OSError) as exc:
                unreachable([i for i, _ in todo[index:]], classify_smtp_error(exc))
                return
            opened = True
        if begin and not begin(item):
            continue
        try:
            connection.send_messages([message])
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: the caller releases what was not finished
        except Exception as exc:
            failed(item, classify_smtp_error(exc))
            dropped = isinstance(exc, smtplib.SMTPServerDisconnected) or (
                isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
            )
            if dropped or _dead(connection):
                # This recipient's server hung up: reconnect for the rest.
                with contextlib.suppress(Exception):
                    connection.close()
                opened = False
            continue
        sent(item)


def _dead(connection) -> bool:
    """After an error, is the SMTP conversation still usable? (RSET answers if it is.)"""
    smtp = getattr(connection, "connection", None)
    if smtp is None:
        return False
    try:
        return smtp.rset()[0] != 250
    except (smtplib.SMTPException, OSError):
        return True


def invitations_stuck(*, now=None) -> Q:
    """Invitations no worker is moving: claimed by one that stopped refreshing its claim,
    queued past their retry time, or queued and never picked up."""
    now = now or timezone.now()
    return (
        Q(state=Invitation.State.SENDING, claimed_at__lt=now - STALE_CLAIM)
        | Q(state=Invitation.State.QUEUED, next_attempt_at__lt=now - STALE_CLAIM)
        | Q(
            state=Invitation.State.QUEUED,
            next_attempt_at__isnull=True,
            claimed_at__isnull=True,
            created_at__lt=now - NEVER_CLAIMED,
        )
        | Q(
            state=Invitation.State.QUEUED,
            next_attempt_at__isnull=True,
            claimed_at__lt=now - STALE_CLAIM,
        )
    )


def invitations_requeue_stuck(*, worker: str = "", now=None) -> list[tuple[int, int]]:
    """Take back what no worker is moving (see invitations_stuck) and return
    [(invitation id, seconds until due)] for the caller to queue.

    With `worker` (a worker starting up under its name): also everything its dead predecessor
    held, however fresh its claim, and every retry that may have been waiting in it (due at
    its own time). A duplicate task is harmless: the claim sends each invitation once.
    """
    now = now or timezone.now()
    # Filtered without a join, so the UPDATEs below re-check their conditions on rows a worker
    # changed meanwhile (a fresh heartbeat, a new claim): only what is still held is taken.
    live = Invitation.objects.filter(poll__in=_open_polls(), revoked_at__isnull=True)
    held = Q(state=Invitation.State.SENDING, claimed_at__lt=now - STALE_CLAIM)
    if worker:
        # Celery requires unique worker names: one starting under this name has no work yet,
        # so whatever this name holds was its dead predecessor's.
        held |= Q(state=Invitation.State.SENDING, claimed_by__startswith=f"{worker} ")
    # A message whose sending killed its worker every time is not tried for ever.
    live.filter(held, attempts__gte=MAX_ATTEMPTS).update(
        state=Invitation.State.FAILED, claim="", next_attempt_at=None,
        failure_reason=f"not sent: the worker sending it stopped, {MAX_ATTEMPTS} times",
    )  # fmt: skip
    taken = list(live.filter(held).values_list("pk", flat=True))
    live.filter(held, pk__in=taken).update(state=Invitation.State.QUEUED, claim="")
    stuck = invitations_stuck(now=now)
    if worker:
        # Retries that may have been waiting in the dead worker (it claimed them last).
        stuck |= Q(
            state=Invitation.State.QUEUED,
            next_attempt_at__isnull=False,
            claimed_by__startswith=f"{worker} ",
        )
    due = dict.fromkeys(taken, 0)
    for pk, at in live.filter(stuck).values_list("pk", "next_attempt_at"):
        due.setdefault(pk, max(0, math.ceil((at - now).total_seconds())) if at else 0)
    return sorted(due.items())


# Closing, cancelling, extending -----------------------------------------------------------------


def _withdraw_unsent(poll: Poll, reason: str) -> None:
    """Invitations still waiting are not sent after all (a worker holding one finishes it)."""
    poll.invitations.filter(state=Invitation.State.QUEUED).update(
        state=Invitation.State.FAILED, failure_reason=reason
    )


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
    _withdraw_unsent(poll, "the poll closed before this was delivered")
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
    from . import tasks

    poll = _lock_open(poll)
    poll.state, poll.cancelled_at, poll.cancelled_by = (
        Poll.State.CANCELLED,
        timezone.now(),
        request.user,
    )
    poll.save(update_fields=["state", "cancelled_at", "cancelled_by", "updated_at"])
    _withdraw_unsent(poll, "the poll was cancelled before this was delivered")
    audit.record("poll.cancel", request=request, obj=poll)
    transaction.on_commit(lambda: tasks.send_stand_down.delay(poll.pk))
    return poll


def poll_send_stand_down(*, poll_id: int) -> int:
    """One stand-down email per address that was sent the poll."""
    poll = Poll.objects.select_related("cancelled_by", "created_by").get(pk=poll_id)
    addresses = sorted(
        set(poll.invitations.filter(state=Invitation.State.SENT).values_list("email", flat=True))
    )
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
    return len(messages)


# Chasing (Celery beat calls polls_chase every minute) ----------------------------------------


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
            _queue(lambda pk=poll.pk: _tasks().send_poll_summary.delay(pk))
            done["closed"] += 1
    for poll in Poll.objects.filter(state=Poll.State.OPEN):
        done["reminded"] += len(_claim_reminders(poll, now))
        done["escalated"] += _escalate(poll, now)
    for poll_id, since, until in _claim_digests(now):
        _tasks().queue(_tasks().send_reply_digest, poll_id, since, until)
        done["digests"] += 1
    return done


def _tasks():
    from . import tasks

    return tasks


def _queue(callback) -> None:
    transaction.on_commit(callback)


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
        _queue(lambda: _tasks().send_reminders.delay(won))
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
        _queue(lambda: _tasks().send_reminders.delay(won))
    return len(won)


def reminders_send(*, invitation_ids: list[int]) -> int:
    """Send claimed reminders one by one; one refused address does not stop the others, and
    nothing is retried wholesale (the next reminder time, or a manual one, tries again)."""
    invitations = list(
        _for_email(
            Invitation.objects.filter(
                pk__in=invitation_ids, poll__state=Poll.State.OPEN, revoked_at__isnull=True
            )
        )
    )
    done = []

    def failed(invitation, failure):
        logger.warning("reminder for invitation %s failed: %s", invitation.pk, failure)

    def unreachable(rest, failure):
        logger.warning("reminders for %d invitation(s) not sent: %s", len(rest), failure)

    todo = []
    for invitation, message in _build_emails(invitations, reminder=True):
        if not isinstance(message, Exception):
            todo.append((invitation, message))
    connection = mailers.default
    try:
        _send_each(connection, todo, sent=done.append, failed=failed, unreachable=unreachable)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return len(done)


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
        with transaction.atomic():  # the claim and the new invitations stand or fall together
            if not Invitation.objects.filter(pk=primary.pk, escalated_at__isnull=True).update(
                escalated_at=now
            ):
                continue  # another run took it
            asked = poll.invitations.filter(agency=primary.agency).values_list(
                "contact_id", flat=True
            )
            for contact in primary.agency.contacts.filter(
                active=True, role=Contact.Role.ALTERNATE
            ).exclude(pk__in=list(asked)):
                created.append(
                    Invitation.objects.create(
                        poll=poll,
                        agency=primary.agency,
                        contact=contact,
                        email=contact.email,
                        distance_km=primary.distance_km,
                        travel_minutes=primary.travel_minutes,
                        is_escalation=True,
                    )
                )
    for start in range(0, len(created), DELIVERY_CHUNK):
        _tasks().queue_delivery([i.pk for i in created[start : start + DELIVERY_CHUNK]])
    if created:
        audit.record("poll.escalate", obj=poll, changes={"alternates": len(created)})
    return len(created)


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


# Replies ----------------------------------------------------------------------------------------


class ReplyRefused(Exception):
    """The link or poll no longer takes answers; `reason` says why (closed, cancelled, revoked)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ReplyConflict(Exception):
    """Someone saved a newer version since the form was opened; `current` is that reply."""

    def __init__(self, current):
        super().__init__("conflict")
        self.current = current


def reply_refusal(poll: Poll, invitation: Invitation | None = None, *, now=None) -> str:
    """Why answers are not taken now ("" when they are): revoked link, cancelled or closed."""
    now = now or timezone.now()
    if invitation is not None and invitation.revoked_at:
        return "revoked"
    if poll.state == Poll.State.CANCELLED:
        return "cancelled"
    if poll.state == Poll.State.CLOSED or (poll.state == Poll.State.OPEN and poll.deadline <= now):
        return "closed"  # past the deadline counts even before the beat job closes the poll
    if poll.state != Poll.State.OPEN:
        return "closed"
    return ""


LINE_FIELDS = ("officers", "vehicles", "depart_minutes", "travel_minutes", "arrival_minutes",
               "deploy_hours", "officers_qualified")  # fmt: skip


def reply_snapshot(reply: Reply, lines) -> dict:
    """The whole answer as plain data, as stored with each version."""
    return {
        "decision": reply.decision,
        "authorised_by_name": reply.authorised_by_name,
        "authorised_by_rank": reply.authorised_by_rank,
        "conditions": list(reply.conditions),
        "conditions_text": reply.conditions_text,
        "decline_reason": reply.decline_reason,
        "note": reply.note,
        "officers": reply.officers,
        "lines": [
            {
                "team_id": line.team_id,
                "team": line.team.name,
                **{f: getattr(line, f) for f in LINE_FIELDS},
            }
            for line in lines
        ],
    }


def _readable(snapshot: dict) -> dict:
    """A snapshot with labels people read, one key per team figure: what history diffs."""
    if not snapshot:
        return {}
    labels = dict(Reply.Condition.choices)
    readable = {
        "Decision": dict(Reply.Decision.choices).get(snapshot["decision"], snapshot["decision"]),
        "Authorised by": ", ".join(
            p for p in (snapshot["authorised_by_rank"], snapshot["authorised_by_name"]) if p
        ),
        "Conditions": "; ".join(labels.get(c, c) for c in snapshot["conditions"]),
        "Conditions in own words": snapshot["conditions_text"],
        "Decline reason": snapshot["decline_reason"],
        "Note": snapshot["note"],
    }
    names = {
        "officers": "officers", "vehicles": "vehicles", "depart_minutes": "leave after (min)",
        "travel_minutes": "travel (min)", "arrival_minutes": "arrive after (min)",
        "deploy_hours": "can stay (h)", "officers_qualified": "meeting requirements",
    }  # fmt: skip
    for line in snapshot["lines"]:
        for field, name in names.items():
            if line.get(field) is not None:
                readable[f"{line['team']}: {name}"] = line[field]
    return {k: v for k, v in readable.items() if v not in ("", None)}


def _lock_poll_for_reply(poll_id: int, invitation_id: int | None) -> Poll:
    """The poll, read so that closing or cancelling it waits for this reply to commit, with
    `link_revoked_at` of the invitation used (None without one).

    On PostgreSQL a FOR SHARE lock: replies do not block each other, but the FOR UPDATE of
    close/cancel does. SQLite serialises writers anyway.
    """
    if connection.vendor == "postgresql":
        return Poll.objects.raw(
            "SELECT p.*, i.revoked_at AS link_revoked_at FROM surveys_poll p "
            "LEFT JOIN surveys_invitation i ON i.id = %s WHERE p.id = %s FOR SHARE OF p",
            [invitation_id, poll_id],
        )[0]
    revoked = Invitation.objects.filter(pk=invitation_id).values("revoked_at")
    return Poll.objects.annotate(link_revoked_at=Subquery(revoked)).get(pk=poll_id)


def reply_submit(
    *, poll: Poll, agency, answer: dict, lines: list[dict], base_version: int,
    invitation: Invitation | None = None, user=None, request=None, confirm_url: str = "",
    confirm: bool = True, now=None,
) -> ReplyVersion | None:  # fmt: skip
    """Save an agency's answer and its team lines in one transaction, as a new version.

    `answer` and `lines` come validated from ReplySubmission (or the API's equivalent).
    `base_version` is the version the form was built from (0 for none): if the stored reply has
    moved on, ReplyConflict is raised and nothing is saved. An unchanged answer saves nothing and
    returns None. A confirmation email to the author is queued after commit (unless `confirm` is
    false: demo data). `now` is injectable for demo data and tests.
    """
    with transaction.atomic():
        now = now or timezone.now()
        locked = _lock_poll_for_reply(poll.pk, invitation.pk if invitation else None)
        if invitation is not None:
            invitation.revoked_at = locked.link_revoked_at
        reason = reply_refusal(locked, invitation, now=now)
        if reason:
            raise ReplyRefused(reason)
        stored = (
            Reply.objects.select_for_update()
            .filter(poll=poll, agency=agency)
            .prefetch_related("lines__team")
            .first()
        )
        before = reply_snapshot(stored, stored.lines.all()) if stored else {}
        created = stored is None
        reply = Reply(poll=poll, agency=agency, created_at=now, version=0)
        if stored:
            reply = copy.copy(stored)  # `stored` stays as it is, for a conflict to show
        new_lines = [_line(poll, line) for line in lines]
        _apply(reply, answer, new_lines)
        after = reply_snapshot(reply, new_lines)
        if (stored.version if stored else 0) != base_version:
            if stored and _readable(before) == _readable(after):
                return None  # the same answer again (a double click, a retried request)
            raise ReplyConflict(stored)
        changes = audit.diff(_readable(before), _readable(after))
        if not created and not changes:
            return None
        reply.version += 1
        reply.updated_at = now
        reply.updated_by = user if user is not None and user.is_authenticated else None
        reply.updated_via = invitation
        if created:
            try:
                with transaction.atomic():
                    reply.save(force_insert=True)
            except IntegrityError:
                # Someone else's first answer for this agency committed a moment ago.
                winner = Reply.objects.prefetch_related("lines__team").get(poll=poll, agency=agency)
                if _readable(reply_snapshot(winner, winner.lines.all())) == _readable(after):
                    return None
                raise ReplyConflict(winner) from None
        else:
            reply.save()
            ReplyLine.objects.filter(reply=reply).delete()
        for line in new_lines:
            line.reply = reply
        ReplyLine.objects.bulk_create(new_lines)
        if reply.updated_by:
            author, email = reply.updated_by.get_full_name(), reply.updated_by.email
        else:
            author, email = invitation.contact.name, invitation.email
        version = ReplyVersion.objects.create(
            reply=reply,
            poll=poll,
            number=reply.version,
            created_at=now,
            user=reply.updated_by,
            invitation=invitation,
            author=f"{author} <{email}>"[:300],
            author_email=email,
            data=after,
            changes=changes,
        )
        Invitation.objects.filter(poll=poll, agency=agency, replied_at__isnull=True).update(
            replied_at=now
        )
        audit.record(
            "reply.create" if created else "reply.update",
            request=request, obj=reply, actor_email=email,
            changes={"version": reply.version, **changes},
        )  # fmt: skip
        if confirm:
            _tasks().queue(_tasks().send_reply_confirmation, version.pk, confirm_url)
    return version


def _apply(reply: Reply, answer: dict, lines: list[ReplyLine]) -> None:
    """Set a reply's fields and its totals over the team lines."""
    for field in ("decision", "authorised_by_name", "authorised_by_rank", "conditions",
                  "conditions_text", "decline_reason", "note"):  # fmt: skip
        setattr(reply, field, answer.get(field) or ([] if field == "conditions" else ""))
    answering = [line for line in lines if line.officers]
    reply.officers = sum(line.officers for line in answering)
    reply.earliest_arrival_minutes = min((line.arrival_minutes for line in answering), default=None)
    reply.travel_flagged = any(line.travel_flagged for line in answering)


def _line(poll: Poll, data: dict) -> ReplyLine:
    depart, travel = data.get("depart_minutes"), data.get("travel_minutes")
    arrival = depart + travel if depart is not None and travel is not None else None
    estimate = data["estimate"]
    flagged = bool(
        data["officers"]
        and travel is not None
        and travel < estimate * settings.REPLY_TRAVEL_FLAG_RATIO
        and estimate - travel >= settings.REPLY_TRAVEL_FLAG_MIN_MINUTES
    )
    return ReplyLine(
        poll=poll,
        team=data["team"],
        officers=data["officers"],
        vehicles=data.get("vehicles"),
        depart_minutes=depart,
        travel_minutes=travel,
        arrival_minutes=arrival,
        deploy_hours=data.get("deploy_hours"),
        officers_qualified=data.get("officers_qualified") if poll.requirements else None,
        estimated_travel_minutes=estimate,
        travel_flagged=flagged,
    )


def reply_send_confirmation(*, version_id: int, url: str) -> bool:
    """Tell whoever saved a version what was recorded (text email, with the link to change it)."""
    version = ReplyVersion.objects.select_related("reply__poll__created_by", "reply__agency").get(
        pk=version_id
    )
    reply = version.reply
    context = {
        "version": version,
        "reply": reply,
        "poll": reply.poll,
        "agency": reply.agency,
        "answer": version.data,
        "readable": _readable(version.data),
        "url": url,
        "deadline": timezone.localtime(reply.poll.deadline),
    }
    subject = f"Answer recorded: {reply.poll.title} ({reply.agency.name})"
    mailers.default.send_messages(
        [
            EmailMultiAlternatives(
                subject=" ".join(subject.split()),
                body=render_to_string("surveys/email/reply_confirmation.txt", context),
                to=[version.author_email],
            )
        ]
    )
    return True


def _claim_digests(now) -> list[tuple[int, str, str]]:
    """Open polls whose sender asked for a digest, with answers since the last one, at most
    one every REPLY_DIGEST_MINUTES. Claimed by a conditional UPDATE: each window is sent once."""
    gap = timezone.timedelta(minutes=settings.REPLY_DIGEST_MINUTES)
    due = Poll.objects.filter(state=Poll.State.OPEN, reply_digest=True).filter(
        Q(digest_sent_at__isnull=True) | Q(digest_sent_at__lte=now - gap)
    )
    claimed = []
    for poll in due:
        since = poll.digest_sent_at or poll.sent_at
        if not poll.reply_versions.filter(created_at__gt=since, created_at__lte=now).exists():
            continue
        if Poll.objects.filter(pk=poll.pk, digest_sent_at=poll.digest_sent_at).update(
            digest_sent_at=now
        ):
            claimed.append((poll.pk, since.isoformat(), now.isoformat()))
    return claimed


def reply_send_digest(*, poll_id: int, since: str, until: str) -> int:
    """One email to the poll's sender listing the answers saved in (since, until]."""
    poll = Poll.objects.select_related("created_by").get(pk=poll_id)
    versions = list(
        poll.reply_versions.filter(created_at__gt=since, created_at__lte=until)
        .select_related("reply__agency")
        .order_by("created_at")
    )
    if not versions:
        return 0
    body = render_to_string(
        "surveys/email/reply_digest.txt",
        {
            "poll": poll,
            "versions": versions,
            "answered": poll.replies.count(),
            "asked": poll.invitations.values("agency").distinct().count(),
            "url": settings.SITE_URL + reverse("surveys:poll-detail", args=[poll.pk]),
        },
    )
    subject = f"{len(versions)} new answer(s): {poll.title}"
    mailers.default.send_messages(
        [
            EmailMultiAlternatives(
                subject=" ".join(subject.split()), body=body, to=[poll.created_by.email]
            )
        ]
    )
    return len(versions)
