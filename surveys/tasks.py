"""Celery adapters: each task calls a service with ids. acks_late (settings): a task whose
worker dies runs again, and the claim in the service keeps it from sending twice."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import transaction

from . import services

logger = logging.getLogger(__name__)


# soft_time_limit: a chunk of DELIVERY_CHUNK emails takes seconds; a hung server is cut off well
# before the visibility timeout could re-deliver the task to a second worker.
@shared_task(bind=True, max_retries=None, soft_time_limit=600, time_limit=660)
def deliver_invitations(self, invitation_ids: list[int]) -> None:
    """Deliver a chunk; then, while some of it waits for a retry, run again when the earliest is
    due. Attempts and back-off are counted per invitation (services.MAX_ATTEMPTS), so the task
    itself needs no retry budget: it ends when nothing of its chunk is left queued."""
    request = self.request
    outcome = services.invitations_deliver(
        invitation_ids=invitation_ids,
        claimed_by=f"{request.hostname or 'local'} {request.id or ''}",
        task_id=request.id or "",
        # The embedded default has no broker to wait through: retries are run at once.
        backoff=not request.is_eager,
    )
    if outcome.pending:
        raise self.retry(args=[outcome.pending], countdown=outcome.countdown())


def queue(task, *args) -> None:
    """Run `task(*args)` on a worker once the current transaction commits.

    The embedded default has no broker to retry through: the task runs in the process, and a
    failure is logged instead of failing the request that already committed its work (the
    sweep re-queues undelivered invitations).
    """
    if task.app.conf.task_always_eager:
        transaction.on_commit(lambda: task.apply(args=list(args), throw=False))
    else:
        task.delay_on_commit(*args)


def queue_delivery(invitation_ids: list[int], *, countdown: int = 0) -> None:
    """Hand invitations to a worker once the current transaction commits."""
    if countdown and not deliver_invitations.app.conf.task_always_eager:
        transaction.on_commit(
            lambda: deliver_invitations.apply_async(args=[invitation_ids], countdown=countdown)
        )
    else:
        queue(deliver_invitations, invitation_ids)


def queue_stuck(stuck: list[tuple[int, int]]) -> int:
    """Queue [(invitation id, seconds until due)] in chunks, each when its earliest is due."""
    stuck = sorted(stuck, key=lambda row: (row[1], row[0]))
    for start in range(0, len(stuck), services.DELIVERY_CHUNK):
        rows = stuck[start : start + services.DELIVERY_CHUNK]
        queue_delivery([pk for pk, _ in rows], countdown=min(due for _, due in rows))
    return len(stuck)


@shared_task
def requeue_stuck_invitations() -> int:
    """The beat sweep (every minute): what no worker is moving goes back to the workers."""
    return queue_stuck(services.invitations_requeue_stuck())


@worker_ready.connect
def take_back_after_a_crash(sender=None, **kwargs) -> None:
    """A worker starting under a name takes back what its dead predecessor (the same name,
    killed mid-chunk) held, and the retries that may have waited in it: within seconds of a
    restart, with or without beat. A duplicate task is harmless (the claim sends once)."""
    worker = getattr(sender, "hostname", "") or ""
    if not worker:
        return
    try:
        count = queue_stuck(services.invitations_requeue_stuck(worker=worker))
    except Exception:  # a worker must start even if the database is briefly away
        logger.exception("could not take back undelivered invitations at start-up")
        return
    if count:
        logger.warning("took back %d undelivered invitation(s) at start-up", count)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_stand_down(poll_id: int) -> int:
    return services.poll_send_stand_down(poll_id=poll_id)


@shared_task
def chase_polls() -> dict:
    return services.polls_chase()


@shared_task
def send_reminders(invitation_ids: list[int]) -> int:
    return services.reminders_send(invitation_ids=invitation_ids)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_poll_summary(poll_id: int) -> bool:
    return services.poll_send_summary(poll_id=poll_id)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_reply_confirmation(version_id: int, url: str) -> bool:
    return services.reply_send_confirmation(version_id=version_id, url=url)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_reply_digest(poll_id: int, since: str, until: str) -> int:
    return services.reply_send_digest(poll_id=poll_id, since=since, until=until)
