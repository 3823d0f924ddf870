"""Waves (issue 20): a poll asked in rings, nearest first, each wave recorded with why it was
sent (the figures at that moment), and each agency asked by a wave at most once."""

from django.conf import settings
from django.db import models

from agencies.models import Agency

from .polls import Poll


class Wave(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Not asked yet"
        SENT = "sent", "Asked"
        SKIPPED = "skipped", "Skipped"

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="waves")
    number = models.PositiveSmallIntegerField()
    # The ring: agencies with travel up to this many minutes not asked by an earlier wave; null
    # for the last ring (the rest of the targeted agencies).
    max_travel_minutes = models.PositiveIntegerField(null=True, blank=True)
    name = models.CharField(max_length=300, blank=True, help_text="The ring, as people read it.")
    wait_minutes = models.PositiveIntegerField(
        default=30, help_text="After this ring is asked, how long before the next may be."
    )
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", help_text="Empty: the rule decided.",
    )  # fmt: skip
    reason = models.JSONField(default=dict, blank=True, help_text="The figures at that moment.")
    agencies = models.PositiveIntegerField(default=0)
    officers_on_record = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["poll", "number"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "number"], name="wave_number_once"),
        ]

    def __str__(self) -> str:
        return f"wave {self.number} of {self.poll}"

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.max_travel_minutes is None:
            return "the rest of the targeted agencies"
        return f"within {self.max_travel_minutes} min of travel"


class WaveAgency(models.Model):
    """An agency asked by a wave, once per poll, with its officers on record then (the
    projection's basis) and what it was told when the need was covered."""

    class Told(models.TextChoices):
        NOTHING = "", "—"
        STANDBY = "standby", "On standby"
        NEED_MET = "need_met", "Need met, no answer needed"

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="wave_agencies")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="asked")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    officers_on_record = models.PositiveIntegerField(default=0)
    told = models.CharField(max_length=10, choices=Told, blank=True, default="")
    told_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["poll", "agency"], name="waveagency_once_per_poll"),
        ]
        indexes = [models.Index(fields=["poll", "told"], name="waveagency_poll_told_idx")]

    def __str__(self) -> str:
        return f"{self.agency_id} in {self.wave}"
