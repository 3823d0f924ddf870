"""Celery adapters for the registry: thin, like surveys.tasks."""

from celery import shared_task
from django.utils import timezone

from . import upkeep


@shared_task
def remind_verification() -> int:
    """The beat sweep (hourly): agencies whose record is due for confirmation are reminded."""
    return upkeep.send_verification_reminders(timezone.now())
