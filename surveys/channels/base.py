"""What every channel is: it builds one message for one invitation and sends it, and reports
each send as sent, transient (worth trying again later) or permanent (will not get better).
Delivery and chasing speak only this; they know nothing of SMTP or of an SMS provider."""

import dataclasses

SENT, TRANSIENT, PERMANENT = "sent", "transient", "permanent"


@dataclasses.dataclass(frozen=True)
class Result:
    outcome: str  # SENT, TRANSIENT or PERMANENT
    reason: str = ""
    provider_id: str = ""  # the provider's id of a sent message, for its delivery receipts


class Unreachable(Exception):
    """The channel's server could not be reached at all: nothing was sent, and nothing after
    this message will go either (the caller puts the rest back)."""
