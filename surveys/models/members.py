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
        SENDING = "sending", "Sending"
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
    # A text is answered by "<code> Y 30": the code and the member's number find the ask.
    reply_code = models.CharField(max_length=8, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)
    # When a worker claimed it for sending: a claim older than a few minutes is a dead worker's.
    claimed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    answer = models.CharField(max_length=12, choices=Answer, blank=True, default="")
    depart_minutes = models.PositiveIntegerField(null=True, blank=True)
    start = models.CharField(max_length=10, choices=Start, blank=True, default="")
    start_place = models.CharField(max_length=200, blank=True)
    # Travel from where they start, estimated as they answered (see surveys.places).
    travel_minutes = models.PositiveIntegerField(null=True, blank=True)
    travel_from = models.CharField(max_length=200, blank=True, help_text="What it was timed from.")
    note = models.CharField(max_length=500, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_via = models.CharField(max_length=10, blank=True, help_text="link or sms")
    # Counted in the agency's submitted answer (set, or cleared, each time the commander submits).
    backing = models.BooleanField(default=False)

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

    @property
    def arrival(self) -> int | None:
        if self.depart_minutes is None or self.travel_minutes is None:
            return None
        return self.depart_minutes + self.travel_minutes

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class MemberLink(models.Model):
    """A personal link sent to a member (the first message, a reminder): only its hash is kept,
    and every one keeps working while the member's answer is taken."""

    ask = models.ForeignKey(MemberAsk, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"link for {self.ask_id}"


class MemberCall(models.Model):
    """A commander asking their members in waves for a number of willing officers rather than
    everyone (issue 20's rule, inside an agency): a first batch, then more only while the
    willing (and the silent times the yes-rate so far) fall short of the number wanted."""

    class State(models.TextChoices):
        RUNNING = "running", "Asking in waves"
        COVERED = "covered", "Enough are willing"
        DONE = "done", "Everyone was asked"
        STOPPED = "stopped", "Stopped"

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="member_calls")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+")
    wanted = models.PositiveIntegerField(help_text="Willing officers the commander asks for.")
    answer_by = models.DateTimeField()
    wait_minutes = models.PositiveIntegerField(default=10)
    state = models.CharField(max_length=10, choices=State, default=State.RUNNING)
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    waves = models.JSONField(default=list, blank=True, help_text="Each batch: when, how many, why.")
    created_at = models.DateTimeField(default=timezone.now)
    last_wave_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["poll", "agency"], name="membercall_once_per_agency"),
        ]

    def __str__(self) -> str:
        return f"{self.agency} asks for {self.wanted} in {self.poll}"
