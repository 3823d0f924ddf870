"""Celery adapters: each task calls one flow function with ids and nothing more. The flows queue
tasks by name (surveys.jobs), so this module imports them and they never import it.
acks_late (settings): a task whose worker dies runs again, and the claims in the flows keep it
from doing anything twice."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from . import (
    chasing,
    delivery,
    inflight,
    intake,
    jobs,
    member_waves,
    members,
    reply_notices,
    wave_notices,
    waves,
)  # fmt: skip

logger = logging.getLogger(__name__)


# soft_time_limit: a chunk of DELIVERY_CHUNK emails takes seconds; a hung server is cut off well
# before the visibility timeout could re-deliver the task to a second worker.
@shared_task(bind=True, max_retries=None, soft_time_limit=600, time_limit=660)
def deliver_invitations(self, invitation_ids: list[int]) -> None:
    """Deliver a chunk; then, while some of it waits for a retry, run again when the earliest is
    due. Attempts and back-off are counted per invitation (delivery.MAX_ATTEMPTS), so the task
    itself needs no retry budget: it ends when nothing of its chunk is left queued."""
    request = self.request
    outcome = delivery.invitations_deliver(
        invitation_ids=invitation_ids,
        claimed_by=f"{request.hostname or 'local'} {request.id or ''}",
        task_id=request.id or "",
        # The embedded default has no broker to wait through: retries are run at once.
        backoff=not request.is_eager,
    )
    if outcome.pending:
        raise self.retry(args=[outcome.pending], countdown=outcome.countdown())


@shared_task
def requeue_stuck_invitations() -> int:
    """The beat sweep (every minute): what no worker is moving goes back to the workers."""
    return delivery.queue_due(delivery.invitations_requeue_stuck()) + members.asks_requeue_stuck()


@worker_ready.connect
def take_back_after_a_crash(sender=None, **kwargs) -> None:
    """A worker starting under a name takes back what its dead predecessor (the same name,
    killed mid-chunk) held, and the retries that may have waited in it: within seconds of a
    restart, with or without beat. A duplicate task is harmless (the claim sends once)."""
    worker = getattr(sender, "hostname", "") or ""
    if not worker:
        return
    try:
        count = delivery.queue_due(delivery.invitations_requeue_stuck(worker=worker))
    except Exception:  # a worker must start even if the database is briefly away
        logger.exception("could not take back undelivered invitations at start-up")
        return
    if count:
        logger.warning("took back %d undelivered invitation(s) at start-up", count)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_stand_down(poll_id: int) -> int:
    return chasing.poll_send_stand_down(poll_id=poll_id)


@shared_task
def chase_polls() -> dict:
    return {
        **chasing.polls_chase(),
        "members_reminded": members.members_chase(),
        "waves": waves.waves_advance(),
        "member_waves": member_waves.calls_advance(),
    }


@shared_task
def send_reminders(invitation_ids: list[int]) -> int:
    return chasing.reminders_send(invitation_ids=invitation_ids)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_poll_summary(poll_id: int) -> bool:
    return chasing.poll_send_summary(poll_id=poll_id)


# A run stops taking batches after 50 s; a hung SMTP server is cut off by the time limits, well
# before CONFIRMATION_LEASE_SECONDS (at least 150): what it held goes once its claim lapses.
@shared_task(soft_time_limit=90, time_limit=120)
def send_reply_confirmations() -> dict:
    """Queued once for any number of answers (jobs.soon), and by beat every minute."""
    jobs.started("surveys.tasks.send_reply_confirmations")
    return reply_notices.confirmations_send(seconds=50)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_reply_confirmation(version_id: int, url: str) -> bool:
    """A confirmation queued before they were kept with their versions (migration 0017)."""
    return reply_notices.reply_send_confirmation(version_id=version_id, url=url)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_reply_digest(poll_id: int, since: str, until: str) -> int:
    return reply_notices.reply_send_digest(poll_id=poll_id, since=since, until=until)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_test_email(poll_id: int, user_id: int) -> bool:
    return inflight.poll_send_test_email(poll_id=poll_id, user_id=user_id)


@shared_task(soft_time_limit=300, time_limit=330)
def fetch_reply_mailbox() -> dict:
    """The beat job (every minute): answers, bounces and the rest from the reply mailbox."""
    return intake.mailbox_fetch()


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_intake_response(message_id: int) -> bool:
    return reply_notices.email_response_send(message_id=message_id)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_member_asks(ask_ids: list[int]) -> int:
    return members.member_asks_send(ask_ids=ask_ids)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_member_reminders(ask_ids: list[int]) -> int:
    return members.member_reminders_send(ask_ids=ask_ids)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_wave_notices(poll_id: int) -> int:
    return wave_notices.notices_send(poll_id=poll_id)
