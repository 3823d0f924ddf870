"""What came in to answer a poll by text or email, kept whatever became of it."""

from django.db import models
from django.utils import timezone

from .members import MemberAsk
from .polls import Invitation
from .replies import ReplyVersion


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
    member_ask = models.ForeignKey(
        MemberAsk, models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="A team member's answer by text.",
    )  # fmt: skip
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
