"""Channels: how a message reaches a person and reports back. `base` says what a channel is;
`email` is the first. Delivery and chasing pick a channel here and speak only `base`."""

from .base import PERMANENT, SENT, TRANSIENT, Result, Unreachable
from .email import EmailChannel

EMAIL = EmailChannel()

__all__ = ["EMAIL", "PERMANENT", "SENT", "TRANSIENT", "EmailChannel", "Result", "Unreachable"]


def for_invitation(invitation) -> EmailChannel:
    """The channel an invitation goes by (email, until contacts choose others)."""
    return EMAIL
