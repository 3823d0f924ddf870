"""Channels: how a message reaches a person and reports back. `base` says what a channel is;
`email` and `sms` are the two. Delivery and chasing pick a channel here and speak only `base`.

An invitation goes by one channel; a contact reached by email and text gets one invitation per
channel (`invitations_for`), each with its own link, delivery state and retries."""

from django.db import transaction

from ..models import Invitation
from . import providers
from .base import PERMANENT, SENT, TRANSIENT, Result, Unreachable
from .email import EmailChannel
from .sms import SmsChannel, assign_reply_codes, sms_for

EMAIL = EmailChannel()
SMS = SmsChannel()
BY_NAME = {Invitation.Channel.EMAIL: EMAIL, Invitation.Channel.SMS: SMS}

__all__ = [
    "EMAIL",
    "PERMANENT",
    "SENT",
    "SMS",
    "TRANSIENT",
    "EmailChannel",
    "Result",
    "SmsChannel",
    "Unreachable",

    "invitations_for",
    "providers",
    "save_invitations",
]  # fmt: skip


def invitations_for(poll, agency, contact, *, now, **fields) -> list[Invitation]:
    """Unsaved invitations of `poll` to `contact`, one per channel the contact is reached by
    (email unless they asked for texts only). `fields`: distance, travel, escalation."""
    common = {"poll": poll, "agency": agency, "contact": contact, **fields}
    made = []
    if contact.emails or not contact.texts:
        made.append(Invitation(**common, channel=Invitation.Channel.EMAIL, email=contact.email))
    if contact.texts:
        made.append(Invitation(**common, **sms_for(contact, poll, now)))
    return made


@transaction.atomic
def save_invitations(invitations: list[Invitation]) -> list[Invitation]:
    """Save new invitations in bulk, the texts with their reply codes."""
    assign_reply_codes([i for i in invitations if i.channel == Invitation.Channel.SMS])
    return Invitation.objects.bulk_create(invitations, batch_size=1000)
