"""Delivery: claim invitations, send each by its channel, record the outcome, retry with
back-off per invitation, give up with the reason, and take back what a dead worker held (the
stuck sweep). Exactly once as far as the channel allows: a claim per chunk, the attempt counted
and the claim checked before each message, the outcome written the moment it is known.
It must not build or send messages itself (channels do), nor chase (chasing does)."""

import dataclasses
import datetime
import math
import uuid

from django.conf import settings
from django.db import connection
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from . import channels, jobs
from .models import Invitation, Poll

DELIVERY_CHUNK = 100  # invitations per Celery task
DELIVER_TASK = "surveys.tasks.deliver_invitations"


def queue(invitation_ids: list[int]) -> None:
    """Hand invitations to the workers in chunks, at once, once the current transaction commits."""
    queue_due([(pk, 0) for pk in invitation_ids])


def queue_new(invitations, now=None) -> int:
    """Queue new invitations, each when it is due (a text in quiet hours when they end)."""
    now = now or timezone.now()
    return queue_due(
        [(i.pk, max(0, math.ceil((i.next_attempt_at - now).total_seconds()))
          if i.next_attempt_at else 0) for i in invitations]
    )  # fmt: skip


def queue_due(rows: list[tuple[int, int]]) -> int:
    """Queue [(invitation id, seconds until due)] in chunks, each when its earliest is due."""
    rows = sorted(rows, key=lambda row: (row[1], row[0]))
    for start in range(0, len(rows), DELIVERY_CHUNK):
        chunk = rows[start : start + DELIVERY_CHUNK]
        jobs.after_commit(
            DELIVER_TASK, [pk for pk, _ in chunk], countdown=min(due for _, due in chunk)
        )
    return len(rows)


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


# _Chunk.sent: mark one invitation sent and begin the next (as _Chunk.begin does), in one
# statement scoped to the claim; the ids returned say which of the two were still ours.
_SENT_THEN_BEGIN = f"""
    UPDATE {Invitation._meta.db_table} SET
        state = CASE WHEN id = %s THEN %s ELSE state END,
        sent_at = CASE WHEN id = %s THEN %s ELSE sent_at END,
        failure_reason = CASE WHEN id = %s THEN '' ELSE failure_reason END,
        next_attempt_at = CASE WHEN id = %s THEN NULL ELSE next_attempt_at END,
        claim = CASE WHEN id = %s THEN '' ELSE claim END,
        provider_id = CASE WHEN id = %s THEN %s ELSE provider_id END,
        claimed_at = CASE WHEN id = %s THEN %s ELSE claimed_at END,
        attempts = CASE WHEN id = %s THEN attempts + 1 ELSE attempts END
    WHERE state = %s AND claim = %s AND id IN (%s, %s)
    RETURNING id
"""  # noqa: S608 (the table's name only; every value is a parameter)


class _Chunk:
    """One claim's rows, written one outcome at a time (each scoped to the claim)."""

    def __init__(self, claim: str):
        self.claim = claim
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

    def sent(self, pk: int, provider_id: str = "", *, then: int | None = None) -> bool:
        """Accepted by the server: mark it sent, and with `then`, begin that one (the next
        message) in the same statement. True when `then` was begun (still ours).

        One statement per message instead of two, written in SQL once: on the fan-out path
        the ORM's compiling of two UPDATEs cost more than the database's running them."""
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        begin = pk if then is None else then  # without a next message, the CASEs never match it
        with connection.cursor() as cursor:
            cursor.execute(
                _SENT_THEN_BEGIN,
                [pk, Invitation.State.SENT, pk, now, pk, pk, pk, pk, provider_id,
                 then, now, then, Invitation.State.SENDING, self.claim, pk, begin],
            )  # fmt: skip
            return then is not None and any(row[0] == then for row in cursor.fetchall())

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
    """Send what this claim holds, one message at a time, each by its invitation's channel."""
    chunk = _Chunk(claim)
    try:
        by_channel = Invitation.objects.filter(pk__in=claimed).values_list("channel", "pk")
        for name in sorted({name for name, _ in by_channel}):
            pks = [pk for n, pk in by_channel if n == name]
            _deliver_by(channels.BY_NAME[name], chunk, pks)
    except BaseException:
        # Anything unexpected (a database error, the task's time limit): release what was not
        # tried, so a retry or the sweep takes it at once.
        chunk.release()
        raise


def _deliver_by(channel, chunk: _Chunk, pks: list[int]) -> None:
    invitations = list(channel.prefetch(Invitation.objects.filter(pk__in=pks).order_by("pk")))
    todo = []
    for invitation, message in channel.build(invitations):
        if isinstance(message, Exception):
            chunk.failed(invitation.pk, f"could not build the message: {message!r}")
        else:
            todo.append((invitation, message))
    begun = None  # the invitation the last write began already
    with channel.sender() as send:
        for index, (invitation, message) in enumerate(todo):
            chunk.heartbeat()
            if begun != invitation.pk and not chunk.begin(invitation.pk):
                continue  # no longer ours: the sweep gave it to another worker
            begun = None
            try:
                result = send(message)
            except channels.Unreachable as exc:
                # This channel's server is down: the rest of its messages go back; another
                # channel's may still go.
                chunk.transient([invitation.pk], str(exc))
                chunk.unreachable([i.pk for i, _ in todo[index + 1 :]], str(exc))
                return
            if result.outcome == channels.SENT:
                then = todo[index + 1][0].pk if index + 1 < len(todo) else None
                if chunk.sent(invitation.pk, result.provider_id, then=then):
                    begun = then
            elif result.outcome == channels.TRANSIENT:
                chunk.transient([invitation.pk], result.reason)
            else:
                chunk.failed(invitation.pk, result.reason)


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


# The provider's statuses, in the order a text goes through them; a callback never moves a
# text back (callbacks may arrive out of order, or be replayed).
RECEIPT_ORDER = {"accepted": 0, "queued": 0, "sending": 1, "sent": 2, "delivered": 3,
                 "undelivered": 3, "failed": 3}  # fmt: skip
RECEIPT_AS = {"accepted": "queued", "sending": "queued"}


def receipt_record(*, provider_id: str, status: str, error: str = "") -> bool:
    """A delivery receipt (status callback) for a text: the invitation shows it; undelivered or
    failed marks it failed with the provider's reason (escalation then treats it as it treats a
    bounced email). Returns whether anything changed."""
    status = (status or "").lower()
    if not provider_id or status not in RECEIPT_ORDER:
        return False
    receipt = RECEIPT_AS.get(status, status)
    # Not over a receipt as far along (the first final word stands: delivered, or not).
    along = {RECEIPT_AS.get(s, s) for s, r in RECEIPT_ORDER.items() if r >= RECEIPT_ORDER[status]}
    rows = Invitation.objects.filter(
        provider_id=provider_id, channel=Invitation.Channel.SMS
    ).exclude(receipt__in=along)
    changes = {"receipt": receipt}
    if receipt in ("undelivered", "failed"):
        reason = f"text {receipt}" + (f" (provider error {error})" if error else "")
        changes |= {"state": Invitation.State.FAILED, "failure_reason": reason[:500]}
    return bool(rows.update(**changes))
