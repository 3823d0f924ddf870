"""Polls and their invitations (one per contact and channel), with their reply links."""

import functools
import hashlib

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property

from agencies.models import Agency, Contact, Qualification, Region, TeamType, TeamTypeLevel

MAX_MINUTES = 72 * 60  # nobody plans a response more than three days out


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
    # Qualifications from team rosters that every officer counted must hold, unexpired: the
    # members' tally counts them (typed requirements are the commander's to count).
    required_qualifications = models.ManyToManyField(Qualification, blank=True, related_name="+")
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

    # Waves (issue 20): ask in rings by travel time from the destination, nearest first, and
    # widen only while the need is not covered nor projected to be. Empty: everyone at once.
    class WaveBy(models.TextChoices):
        TRAVEL = "travel", "Travel time from the destination"
        REGION = "region", "Regions"
        AGENCY = "agency", "Chosen agencies"

    wave_by = models.CharField("rings by", max_length=10, choices=WaveBy, default=WaveBy.TRAVEL)
    wave_rings = models.JSONField(
        default=list, blank=True,
        help_text="By travel: upper bounds in minutes, e.g. [45, 90, 180]. By region or agency: "
        "a list of ids per ring, e.g. [[1, 2], [3]]. Then the rest of the targeted agencies.",
    )  # fmt: skip
    wave_wait_minutes = models.PositiveIntegerField(default=30)
    wave_waits = models.JSONField(
        default=list, blank=True,
        help_text="A wait per ring, in minutes, where they differ (else wave_wait_minutes).",
    )  # fmt: skip
    wave_count_conditional = models.BooleanField(
        "count yeses with conditions toward the need", default=False
    )

    class Waves(models.TextChoices):
        NONE = "", "All at once"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        COVERED = "covered", "Need covered"

    waves_state = models.CharField(max_length=10, choices=Waves, blank=True, default="")
    waves_covered_at = models.DateTimeField(null=True, blank=True)
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
    reply_digest = models.BooleanField(
        "email me a digest of new answers",
        default=False,
        help_text="At most one email every few minutes while answers arrive, never one per answer.",
    )
    digest_sent_at = models.DateTimeField(null=True, blank=True)

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

    def need_window_minutes(self) -> int | None:
        """The need's deadline as minutes after the poll was sent (the call), if it has one."""
        if not (self.officers_needed and self.needed_by and self.sent_at):
            return None
        # From the minute the poll was sent, as people read it: sent at 14:00:40 for 17:00 is
        # a 3-hour need, not "2 h 59 min".
        sent = self.sent_at.replace(second=0, microsecond=0)
        minutes = (self.needed_by - sent).total_seconds() / 60
        return max(0, min(MAX_MINUTES, int(minutes)))

    @cached_property
    def required(self) -> list:
        """The roster qualifications required, by name (read once per instance: prefetched, or
        by a query compiled once, which every dashboard request and first answer makes)."""
        if not self.pk:
            return []
        if "required_qualifications" in getattr(self, "_prefetched_objects_cache", {}):
            return list(self.required_qualifications.all())
        return [row.qualification for row in _required_lookup().rows(self.pk)]

    @cached_property
    def requirement_list(self) -> list[str]:
        """Every requirement as shown: the roster qualifications required, then the typed ones."""
        return [f"Current {q.name}" for q in self.required] + list(self.requirements)


@functools.cache
def _required_lookup():
    from readiness.db import Lookup

    through = Poll.required_qualifications.through
    return Lookup(
        through,
        lambda poll_id: (
            through.objects.filter(poll_id=poll_id)
            .select_related("qualification")
            .order_by("qualification__name", "qualification_id")
        ),
        kinds=(int,),
    )


class Invitation(models.Model):
    """One poll sent to one agency contact by one channel (a contact reached by email and text
    has two), with its secret reply link and delivery state."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "Text"

    class Receipt(models.TextChoices):  # the provider's last word on a text (status callbacks)
        NONE = "", "—"
        QUEUED = "queued", "Queued at the provider"
        SENT = "sent", "Sent to the carrier"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERED = "undelivered", "Undelivered"
        FAILED = "failed", "Failed"

    # Indexed by the composite indexes below (poll first; agency first), not each on its own:
    # every index is one more write per invitation sent and per answer.
    poll = models.ForeignKey(
        Poll, on_delete=models.CASCADE, related_name="invitations", db_index=False
    )
    agency = models.ForeignKey(
        Agency, on_delete=models.PROTECT, related_name="invitations", db_index=False
    )
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="invitations")
    channel = models.CharField(max_length=10, choices=Channel, default=Channel.EMAIL)
    email = models.EmailField(blank=True, help_text="Where it was emailed, as it was then.")
    mobile = models.CharField(max_length=16, blank=True, help_text="Where it was texted (E.164).")
    # A text is answered by "<code> Y 12 45": the code and the sender's number together find the
    # invitation (no two open invitations to one number share a code).
    reply_code = models.CharField(max_length=8, blank=True)
    provider_id = models.CharField(max_length=64, blank=True, help_text="The provider's id.")
    receipt = models.CharField(max_length=12, choices=Receipt, blank=True, default="")
    # Only a hash of the reply token is stored: a database leak does not leak working links.
    # The newest link's hash; every link ever sent for the invitation is in InvitationLink and
    # keeps working until the poll ends (a duplicate or a reminder never kills an earlier one).
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    distance_km = models.FloatField()
    travel_minutes = models.PositiveIntegerField(help_text="Estimated travel to the destination.")
    state = models.CharField(max_length=20, choices=State, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Times a server was asked to take it (each with its own outcome)."
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="After a transient failure: when it is tried again."
    )
    # The claim that holds it while a worker sends it: `claim` is unique to one claim;
    # `claimed_by` names the worker and task ("celery@host task-id"), so a re-delivered task
    # or a restarted worker can take back what its dead predecessor held; `claimed_at` is the
    # claim's heartbeat, refreshed while the worker goes through its chunk.
    claim = models.CharField(max_length=32, blank=True)
    claimed_by = models.CharField(max_length=300, blank=True)
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
            models.UniqueConstraint(
                fields=["poll", "contact", "channel"], name="invitation_once_per_contact_channel"
            ),
            models.CheckConstraint(
                condition=Q(channel="email", mobile="") | Q(channel="sms", email=""),
                name="invitation_one_address",
            ),
        ]
        indexes = [
            models.Index(
                fields=["provider_id"], name="invitation_provider_idx", condition=~Q(provider_id="")
            ),
            models.Index(
                fields=["mobile", "reply_code"],
                name="invitation_sms_code_idx",
                condition=~Q(mobile=""),
            ),
            models.Index(fields=["poll", "state"], name="invitation_poll_state_idx"),
            # An agency's invitations to a poll (an answer stamps them): found by both keys,
            # whatever the planner's statistics say of a poll just sent.
            models.Index(fields=["agency", "poll"], name="invitation_agency_poll_idx"),
            models.Index(fields=["state", "claimed_at"], name="invitation_claim_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.poll} → {self.agency}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class InvitationLink(models.Model):
    """One reply link sent for an invitation, by the hash of its token. Every link an
    invitation was sent with works until the poll ends: a message the server stored before
    dropping the connection (and so sent twice), a reminder, or a forwarded earlier email."""

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"link {self.token_hash[:8]}… of {self.invitation_id}"
