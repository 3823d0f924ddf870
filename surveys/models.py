import hashlib

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from agencies.models import Agency, Contact, Region, SpecialTeam, TeamType, TeamTypeLevel


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

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="invitations")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="invitations")
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


MAX_MINUTES = 72 * 60  # nobody plans a response more than three days out
MAX_DEPLOY_HOURS = 30 * 24


class Reply(models.Model):
    """One agency's current answer to one poll. Earlier versions live in ReplyVersion.

    `version` counts saved versions: a form carries the version it was built from, and a save
    from an older version is a conflict, never a silent overwrite.
    """

    class Decision(models.TextChoices):
        AVAILABLE = "available", "Available"
        CONDITIONAL = "conditional", "Available with conditions"
        UNAVAILABLE = "unavailable", "Unavailable"

    class Condition(models.TextChoices):
        EMERGENCIES_ONLY = "emergencies_only", "Emergencies only, not routine calls for service"
        DURESS = "officer_duress", "Only if an officer is under direct duress"
        OWN_AUTHORITY = "own_authority", "Only under our own agency's legal and command authority"
        REQUIREMENTS = "requirements", "Vaccination or other requirements"
        OTHER = "other", "Other (describe below)"

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="replies")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="replies")
    decision = models.CharField(max_length=20, choices=Decision)
    conditions = models.JSONField(default=list, blank=True)  # Condition values
    conditions_text = models.TextField(blank=True)
    decline_reason = models.TextField(blank=True)
    note = models.TextField("note to the coordinator", blank=True)
    authorised_by_name = models.CharField(max_length=150, blank=True)
    authorised_by_rank = models.CharField(max_length=100, blank=True)
    # Totals over the lines, kept with every save so lists and dashboards need no join.
    officers = models.PositiveIntegerField(default=0)
    earliest_arrival_minutes = models.PositiveIntegerField(null=True, blank=True)
    travel_flagged = models.BooleanField(
        default=False, help_text="A team's stated travel time is far below the estimate."
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_via = models.ForeignKey(
        Invitation, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The emailed link used for the latest version, if any.",
    )  # fmt: skip

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "agency"], name="reply_once_per_agency"),
            models.CheckConstraint(
                condition=Q(decision__in=["available", "conditional", "unavailable"]),
                name="reply_decision_valid",
            ),
            models.CheckConstraint(
                condition=~Q(decision="unavailable") | ~Q(decline_reason=""),
                name="reply_decline_has_reason",
                violation_error_message="An unavailable answer gives a reason.",
            ),
        ]
        indexes = [models.Index(fields=["poll", "decision"], name="reply_poll_decision_idx")]

    def __str__(self) -> str:
        return f"{self.agency} → {self.poll}"

    @property
    def authorised_by(self) -> str:
        """The person first, then their rank: "Morgan Kowalski, Chief of Police"."""
        return ", ".join(p for p in (self.authorised_by_name, self.authorised_by_rank) if p)

    def condition_labels(self) -> list[str]:
        labels = dict(self.Condition.choices)
        return [labels.get(c, c) for c in self.conditions]


class ReplyLine(models.Model):
    """One team in a reply: how many officers, how soon they leave, how long to get there."""

    reply = models.ForeignKey(Reply, on_delete=models.CASCADE, related_name="lines")
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="+")  # for aggregates
    team = models.ForeignKey(SpecialTeam, on_delete=models.PROTECT, related_name="+")
    officers = models.PositiveIntegerField()
    vehicles = models.PositiveIntegerField(null=True, blank=True)
    depart_minutes = models.PositiveIntegerField(null=True, blank=True)
    travel_minutes = models.PositiveIntegerField(null=True, blank=True)
    # Stored (departure + travel) so dashboards aggregate it directly.
    arrival_minutes = models.PositiveIntegerField(null=True, blank=True)
    deploy_hours = models.PositiveIntegerField(null=True, blank=True)
    officers_qualified = models.PositiveIntegerField(
        null=True, blank=True, help_text="Officers meeting every requirement the poll states."
    )
    estimated_travel_minutes = models.PositiveIntegerField()
    travel_flagged = models.BooleanField(default=False)

    class Meta:
        ordering = ["team__team_type__sort_order", "team__name"]
        constraints = [
            models.UniqueConstraint(fields=["reply", "team"], name="replyline_once_per_team"),
            models.CheckConstraint(
                condition=Q(officers=0)
                | Q(
                    depart_minutes__isnull=False,
                    travel_minutes__isnull=False,
                    arrival_minutes=models.F("depart_minutes") + models.F("travel_minutes"),
                ),
                name="replyline_arrival_is_depart_plus_travel",
            ),
            models.CheckConstraint(
                condition=Q(depart_minutes__lte=MAX_MINUTES) | Q(depart_minutes__isnull=True),
                name="replyline_depart_bounded",
            ),
            models.CheckConstraint(
                condition=Q(travel_minutes__lte=MAX_MINUTES) | Q(travel_minutes__isnull=True),
                name="replyline_travel_bounded",
            ),
            models.CheckConstraint(
                condition=Q(officers_qualified__lte=models.F("officers"))
                | Q(officers_qualified__isnull=True),
                name="replyline_qualified_within_officers",
            ),
        ]
        indexes = [models.Index(fields=["poll", "arrival_minutes"], name="replyline_arrival_idx")]

    def __str__(self) -> str:
        return f"{self.team}: {self.officers}"


class ReplyVersion(models.Model):
    """A saved version of a reply: who, when, by which channel, the whole answer, what changed."""

    class Channel(models.TextChoices):
        LINK = "link", "Emailed link"
        FORM = "form", "Signed-in form"
        API = "api", "API"
        SMS = "sms", "Text message"
        EMAIL = "email", "Email reply"

    reply = models.ForeignKey(Reply, on_delete=models.CASCADE, related_name="versions")
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="reply_versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    invitation = models.ForeignKey(
        Invitation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author = models.CharField(max_length=300, help_text="Name and address, as they were then.")
    author_email = models.EmailField()
    channel = models.CharField(max_length=10, choices=Channel, default=Channel.LINK)
    data = models.JSONField(help_text="The whole answer as saved.")
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": [before, after]}')

    class Meta:
        ordering = ["-created_at", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["reply", "number"], name="replyversion_number_unique"),
        ]
        indexes = [models.Index(fields=["poll", "created_at"], name="replyversion_feed_idx")]

    def __str__(self) -> str:
        return f"{self.reply} v{self.number}"

    @property
    def author_name(self) -> str:
        """The author without their address, for those who may not see contact details."""
        name = self.author.rsplit(" <", 1)[0].strip() if self.author_email else self.author
        return name or "someone by the emailed link"


class InboundMessage(models.Model):
    """A text (later, an email) that came in to answer a poll, kept whatever became of it: a retry
    of one message id is one answer, and what was not understood waits for a person."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Answer recorded"
        UNCHANGED = "unchanged", "Same answer as before"
        REFUSED = "refused", "Refused (poll closed, link withdrawn, ...)"
        NOT_UNDERSTOOD = "not_understood", "Not understood"
        UNMATCHED = "unmatched", "No open invitation to this sender"
        COMMAND = "command", "HELP, STOP or START"

    channel = models.CharField(max_length=10, choices=ReplyVersion.Channel)
    message_id = models.CharField(max_length=200, help_text="The provider's id of the message.")
    sender = models.CharField(max_length=254)
    body = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)
    invitation = models.ForeignKey(
        Invitation, models.SET_NULL, null=True, blank=True, related_name="inbound"
    )
    version = models.ForeignKey(
        ReplyVersion, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=20, choices=Outcome)
    response = models.TextField(blank=True, help_text="What the sender was told.")
    handled_at = models.DateTimeField(null=True, blank=True, help_text="Seen to by a person.")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "message_id"], name="inbound_once_per_message"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} from {self.sender}: {self.outcome}"
