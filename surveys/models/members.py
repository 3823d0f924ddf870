"""A commander's second level: the members of the agency's targeted teams, asked one by one
whether they would go and how soon, each by a personal link that reaches only their answer."""

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from agencies.models import Agency, SpecialTeam, TeamMember

from .polls import Poll
from .replies import MAX_MINUTES


class MemberAsk(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Answer(models.TextChoices):
        NONE = "", "No answer yet"
        WILLING = "willing", "Willing"
        CONDITIONAL = "conditional", "Willing, with conditions"
        NOT_WILLING = "not_willing", "Not willing"

    class Start(models.TextChoices):
        STATION = "station", "The station"
        HOME = "home", "Home base"
        OTHER = "other", "Somewhere else"

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="member_asks")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(SpecialTeam, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(TeamMember, on_delete=models.PROTECT, related_name="asks")
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    asked_at = models.DateTimeField(default=timezone.now)
    answer_by = models.DateTimeField(help_text="The commander's own deadline for members.")
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)
    failure_reason = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    answer = models.CharField(max_length=12, choices=Answer, blank=True, default="")
    depart_minutes = models.PositiveIntegerField(null=True, blank=True)
    start = models.CharField(max_length=10, choices=Start, blank=True, default="")
    start_place = models.CharField(max_length=200, blank=True)
    note = models.CharField(max_length=500, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["team", "member__name"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "member"], name="memberask_once_per_poll"),
            models.CheckConstraint(
                condition=Q(depart_minutes__isnull=True) | Q(depart_minutes__lte=MAX_MINUTES),
                name="memberask_depart_bounded",
            ),
        ]
        indexes = [models.Index(fields=["poll", "agency"], name="memberask_poll_agency_idx")]

    def __str__(self) -> str:
        return f"{self.member} asked for {self.poll}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()
