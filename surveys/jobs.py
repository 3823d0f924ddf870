"""Hand work to Celery once the current transaction commits: the one way the flows queue
tasks. Flows name a task; they never import surveys.tasks (which imports them), so the import
graph runs one way: tasks -> flows -> jobs.

A task that fails to run (with the embedded default, where it runs in the process after the
commit) or to be queued (a broker that cannot be reached) is logged instead of failing the
request that already committed its work: an answer saved is answered as saved. The sweeps
re-queue undelivered invitations; a confirmation email lost that way is in the log."""

from celery import current_app
from django.db import transaction

from readiness.log_filters import mask_secrets


def after_commit(task_name: str, *args, countdown: int = 0) -> None:
    """Run the task `task_name` (e.g. "surveys.tasks.send_reminders") with `args` on a worker
    once the current transaction commits, `countdown` seconds later."""
    task = current_app.tasks[task_name]
    if task.app.conf.task_always_eager:
        transaction.on_commit(lambda: task.apply(args=list(args), throw=False))
        return
    # The arguments as monitoring and the worker's log show them: a reply link masked (Celery's
    # own repr of them, saferepr, would show it, and costs a sixth of the publish).
    shown = {"argsrepr": mask_secrets(repr(args)), "kwargsrepr": "{}"}
    if countdown:
        shown["countdown"] = countdown
    transaction.on_commit(lambda: task.apply_async(args=list(args), **shown), robust=True)
