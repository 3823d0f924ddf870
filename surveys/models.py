import hashlib

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from agencies.models import Agency, Contact, Region, TeamType, TeamTypeLevel


class Poll(models.Model):
    """An availability survey sent to agencies: would their teams respond, and how fast?"""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENDING = "sending", "Sending"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        CANCELLED = "cancelled", "Cancelled"

    class Purpose(models.TextChoices):
        PLANNING = "planning", "Planning survey"
        REQUEST = "request", "Request for assistance"

    class Situation(models.TextChoices):
        EMERGENCY = "emergency", "Emergency / critical incident"
        PLANNED = "planned", "Planned event"
        EXERCISE = "exercise", "Exercise"

    title = models.CharField(max_length=200)
    purpose = models.CharField(max_length=20, choices=Purpose, default=Purpose.PLANNING)
    requesting_agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requesting_person = models.CharField(max_length=150, blank=True)
    officers_needed = models.PositiveIntegerField(null=True, blank=True)
    needed_team_type = models.ForeignKey(
        TeamType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    needed_by = models.DateTimeField(null=True, blank=True)
    requirements = models.JSONField(default=list, blank=True)  # short texts
    message = models.TextField()
    situation = models.CharField(max_length=20, choices=Situation, default=Situation.EMERGENCY)
    destination_name = models.CharField(max_length=150)
    destination_latitude = models.FloatField(
        validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    destination_longitude = models.FloatField(
        validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    # Targets: an agency is asked when it matches every filter that is set, or is hand-picked.
    target_regions = models.ManyToManyField(Region, blank=True, related_name="+")
    target_team_types = models.ManyToManyField(TeamType, blank=True, related_name="+")
    target_levels = models.ManyToManyField(TeamTypeLevel, blank=True, related_name="+")
    target_kinds = models.JSONField(default=list, blank=True)
    target_radius_km = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    target_agencies = models.ManyToManyField(Agency, blank=True, related_name="+")
    deadline = models.DateTimeField()
    reminder_hours_before = models.JSONField(
        default=list, blank=True, help_text="Hours before the deadline to remind the silent."
    )
    escalate_after_hours = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State, default=State.DRAFT, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    summary_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(purpose="request")
                | (Q(requesting_agency__isnull=False) & ~Q(requesting_person="")),
                name="poll_request_names_authority",
                violation_error_message="A request for assistance names who requests it.",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Invitation(models.Model):
    """One poll sent to one agency contact, with its secret reply link and delivery state."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="invitations")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="invitations")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField(help_text="Where it was sent, as it was then.")
    # Only a hash of the reply token is stored: a database leak does not leak working links.
    # Set when the email is built; each delivery attempt makes a fresh token.
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    distance_km = models.FloatField()
    travel_minutes = models.PositiveIntegerField(help_text="Estimated travel to the destination.")
    state = models.CharField(max_length=20, choices=State, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Chasing: reminders to the silent, and escalation to the agency's alternate contacts.
    is_escalation = models.BooleanField(
        default=False, help_text="Sent to an alternate contact because the primary was silent."
    )
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True, help_text="Set by the reply form.")
    stand_down_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agency__name"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "contact"], name="invitation_once_per_contact"),
        ]
        indexes = [
            models.Index(fields=["poll", "state"], name="invitation_poll_state_idx"),
            models.Index(fields=["state", "claimed_at"], name="invitation_claim_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.poll} → {self.agency}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()
