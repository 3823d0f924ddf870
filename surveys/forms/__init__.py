"""Forms of the surveys app: composing a poll (compose) and answering one (reply)."""

from .compose import CUSTOM, LOCAL_INPUT, ExtendForm, InstantField, PollForm, targets_from
from .reply import ReplyForm, ReplyLineForm, ReplySubmission

__all__ = [
    "CUSTOM", "LOCAL_INPUT", "ExtendForm", "InstantField", "PollForm", "ReplyForm",
    "ReplyLineForm", "ReplySubmission", "targets_from",
]  # fmt: skip
