"""Celery adapters: each task calls a service with ids. acks_late (settings): a task whose
worker dies runs again, and the claim in the service keeps it from sending twice."""

from celery import shared_task
from django.db import transaction

from . import services

MAX_RETRIES = 5


# soft_time_limit: well inside the sweep's 15-minute stale-claim cut-off.
@shared_task(bind=True, max_retries=MAX_RETRIES, soft_time_limit=600)
def deliver_invitations(self, invitation_ids: list[int]) -> None:
    retry = services.invitations_deliver(invitation_ids=invitation_ids)
    if not retry:
        return
    if self.request.retries >= MAX_RETRIES:
        services.invitations_give_up(invitation_ids=retry)
        return
    # Back off: 30 s, 1, 2, 4, 8 minutes.
    raise self.retry(args=[retry], countdown=30 * 2**self.request.retries)


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


def queue_delivery(invitation_ids: list[int]) -> None:
    """Hand invitations to a worker once the current transaction commits."""
    queue(deliver_invitations, invitation_ids)


@shared_task
def requeue_stuck_invitations() -> int:
    ids = services.invitations_requeue_stuck()
    for start in range(0, len(ids), services.DELIVERY_CHUNK):
        queue_delivery(ids[start : start + services.DELIVERY_CHUNK])
    return len(ids)


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
