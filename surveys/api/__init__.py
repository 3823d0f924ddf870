"""Polls, invitations and replies through the API.

Input is validated by the same forms as the pages (PollForm, ReplySubmission) and saved by the
same flows, so the API and the pages cannot disagree about what is valid. Each module owns one
resource; this package only names the viewsets the router registers."""

from .invitations import InvitationViewSet
from .polls import PollViewSet
from .replies import ReplyViewSet

__all__ = ["InvitationViewSet", "PollViewSet", "ReplyViewSet"]
