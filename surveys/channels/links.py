"""Reply links: a fresh secret token per message, of which only the hash is stored."""

import secrets

from django.utils import timezone

from ..models import Invitation, InvitationLink


def issue_links(invitations: list[Invitation], *, nbytes: int) -> dict[int, str]:
    """A new token for each invitation ({pk: token}), its hash saved (before anything is sent)
    as the invitation's newest and as one more of its links. Earlier links keep working until
    the poll ends: a message sent twice, a reminder, an earlier message forwarded."""
    tokens = {inv.pk: secrets.token_urlsafe(nbytes) for inv in invitations}
    now = timezone.now()
    for inv in invitations:
        inv.token_hash = Invitation.hash_token(tokens[inv.pk])
    Invitation.objects.bulk_update(invitations, ["token_hash"], batch_size=500)
    InvitationLink.objects.bulk_create(
        (InvitationLink(invitation=inv, token_hash=inv.token_hash, created_at=now)
         for inv in invitations),
        batch_size=500,
    )  # fmt: skip
    return tokens
