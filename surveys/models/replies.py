"""Agencies' answers: the current one, its team lines, and every version."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from agencies.models import Agency, SpecialTeam, TeamType

from .polls import MAX_MINUTES, Invitation, Poll

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

    # Indexed by reply_once_per_agency (poll, agency), not on its own (one write less).
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="replies", db_index=False)
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
        indexes = [
            # Counts by decision, and the dashboard's declines, newest first, a page at a time.
            models.Index(fields=["poll", "decision", "updated_at"], name="reply_poll_decision_idx"),
            # The dashboard's answers, soonest first (its default order), a page at a time.
            models.Index(
                fields=["poll", "earliest_arrival_minutes"], name="reply_poll_arrival_idx"
            ),
        ]

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

    # Indexed by replyline_once_per_team (reply, team) and replyline_arrival_idx (poll, ...).
    reply = models.ForeignKey(Reply, on_delete=models.CASCADE, related_name="lines", db_index=False)
    poll = models.ForeignKey(  # for aggregates
        Poll, on_delete=models.CASCADE, related_name="+", db_index=False
    )
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
    # Of the officers, those backed by team members who said they would go (the rest are the
    # commander's estimate); set when the commander answered from their members' tally.
    officers_backed = models.PositiveIntegerField(default=0)
    travel_flagged = models.BooleanField(default=False)
    # Copied from the answer and its team when the answer is saved (every version writes its
    # lines anew), so that the dashboard's figures and the waves' rule group and filter in one
    # pass over this table. An answer was given for the team as it was then: a team retyped
    # later counts where it was answered until the agency's next version (and its old type
    # cannot be deleted while answers count under it).
    decision = models.CharField(max_length=20, choices=Reply.Decision)
    team_type = models.ForeignKey(TeamType, on_delete=models.PROTECT, related_name="+")
    team_level = models.PositiveSmallIntegerField(null=True, blank=True)

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

    # Indexed by replyversion_number_unique (reply, number) and replyversion_feed_idx (poll, ...).
    reply = models.ForeignKey(
        Reply, on_delete=models.CASCADE, related_name="versions", db_index=False
    )
    poll = models.ForeignKey(
        Poll, on_delete=models.CASCADE, related_name="reply_versions", db_index=False
    )
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
    member_tally = models.JSONField(
        default=dict, blank=True, help_text="What the team members said, beside what was sent."
    )

    class Confirmation(models.TextChoices):
        NONE = "", "Not asked"
        DUE = "due", "Due"
        SENT = "sent", "Sent"
        FAILED = "failed", "Could not be sent"

    # The email telling the author what was recorded: written "due" with the version itself, in
    # the same statement, and sent by a worker (reply_notices.confirmations_send), which claims
    # it for CONFIRMATION_LEASE_SECONDS. No queue message per answer carries it: a broker down
    # as the answer commits delays it, and loses nothing. The database's defaults let processes
    # started before these columns existed go on saving answers while a deploy rolls.
    confirmation = models.CharField(
        max_length=8, choices=Confirmation, default="", db_default="", blank=True
    )
    confirmation_claimed_at = models.DateTimeField(null=True, blank=True)
    confirmation_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["-created_at", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["reply", "number"], name="replyversion_number_unique"),
        ]
        indexes = [
            models.Index(fields=["poll", "created_at"], name="replyversion_feed_idx"),
            # Only the confirmations waiting to go: a few rows, whatever the table's size.
            models.Index(
                fields=["id"], name="replyversion_confirm_due_idx", condition=Q(confirmation="due")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reply} v{self.number}"

    @property
    def author_name(self) -> str:
        """The author without their address, for those who may not see contact details."""
        name = self.author.rsplit(" <", 1)[0].strip() if self.author_email else self.author
        return name or "someone by the emailed link"
