"""The polls' models, by flow: polls and invitations, answers, what came in. Import them from
here (surveys.models)."""

from .inbound import InboundMessage
from .members import MemberAsk, MemberCall, MemberLink
from .polls import Invitation, InvitationLink, Poll
from .replies import MAX_DEPLOY_HOURS, MAX_MINUTES, Reply, ReplyLine, ReplyVersion
from .waves import Wave, WaveAgency

__all__ = [
    "MAX_DEPLOY_HOURS", "MAX_MINUTES", "InboundMessage", "Invitation", "InvitationLink",
    "MemberAsk", "MemberCall", "MemberLink", "Poll", "Reply", "ReplyLine", "ReplyVersion",
    "Wave", "WaveAgency",
]  # fmt: skip
