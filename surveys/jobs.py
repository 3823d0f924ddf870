"""Hand work to Celery once the current transaction commits: the one way the flows queue
tasks. Flows name a task; they never import surveys.tasks (which imports them), so the import
graph runs one way: tasks -> flows -> jobs.

With the embedded default (no broker), the task runs in the process after the commit, and a
failure is logged instead of failing the request that already committed its work (the sweep
re-queues undelivered invitations). A task that cannot be queued (the broker cannot be
reached) fails the caller, after its commit: a beat run stops there, leaving the rest of its
work unclaimed for the next run, and a person sees an error. Only where the work's loss costs
less than that error is the failure logged instead (`robust`). Work that the database says is
due (an answer's confirmation email) is queued by soon(): one run for many, and a failure to
queue it only logged, since beat runs it anyway."""

import logging

from celery import current_app
from django.core.cache import cache
from django.db import transaction

from readiness import cache as caching
from readiness.log_filters import mask_secrets

logger = logging.getLogger(__name__)


def after_commit(task_name: str, *args, countdown: int = 0, robust: bool = False) -> None:
    """Run the task `task_name` (e.g. "surveys.tasks.send_reminders") with `args` on a worker
    once the current transaction commits, `countdown` seconds later; with `robust`, a failure
    to queue it is logged, not raised."""
    task = current_app.tasks[task_name]
    if task.app.conf.task_always_eager:
        transaction.on_commit(lambda: task.apply(args=list(args), throw=False))
        return
    # The arguments as monitoring and the worker's log show them: a reply link masked (Celery's
    # own repr of them, saferepr, would show it, and costs a sixth of the publish).
    shown = {"argsrepr": mask_secrets(repr(args)), "kwargsrepr": "{}"}
    if countdown:
        shown["countdown"] = countdown
    transaction.on_commit(lambda: task.apply_async(args=list(args), **shown), robust=robust)


# How long "a run is queued" holds when its run never starts (a broker that took the message
# and lost it): beat's run every minute sends what is due meanwhile.
QUEUED_SECONDS = 300


def soon(task_name: str, *, forget: tuple[str, ...] = ()) -> None:
    """Run the task `task_name`, which takes no arguments and does what the database says is
    due, once the current transaction commits, unless a run is queued already: any number of
    answers committing meanwhile cost one message. The task calls started() before it reads
    what is due, so whatever commits after that queues the next run. The cache keys `forget`
    are deleted in the same round trip to the cache (a poll's counted activity). A broker or
    cache that cannot be reached is logged: the work stays due in the database for beat's next
    run."""
    task = current_app.tasks[task_name]
    if task.app.conf.task_always_eager:
        if forget:
            transaction.on_commit(lambda: cache.delete_many(forget), robust=True)
        transaction.on_commit(lambda: task.apply(throw=False))
        return
    transaction.on_commit(lambda: _queue_once(task, forget), robust=True)


def _mark(task_name: str) -> str:
    return f"jobs:queued:{task_name}"  # (bench/replies.py clears these)


def _queue_once(task, forget) -> None:
    mark = _mark(task.name)
    if caching.forget_and_add(list(forget), mark, 1, QUEUED_SECONDS):
        try:
            task.apply_async()
        except Exception:
            cache.delete(mark)  # not queued: the next answer tries again
            raise


def started(task_name: str) -> None:
    """Called by a soon() task as it starts, before it reads what is due (a cache that cannot
    be reached is logged: the run goes on, and the mark lapses by itself)."""
    try:
        cache.delete(_mark(task_name))
    except Exception:
        logger.exception("the cache could not be told that %s started", task_name)
