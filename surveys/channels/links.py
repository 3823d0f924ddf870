"""Reply links: a fresh secret token per message, of which only the hash is stored."""

import secrets

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from readiness import bulk

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


def one_more_link(invitation_id: int, *, nbytes: int) -> tuple[InvitationLink, str]:
    """One more link to the invitation's form, unsaved (the caller saves it with what it
    writes), and its address; the invitation's newest token stays as it is."""
    token = secrets.token_urlsafe(nbytes)
    link = bulk.new(
        InvitationLink, invitation_id=invitation_id, token_hash=Invitation.hash_token(token)
    )
    return link, settings.SITE_URL + reverse("surveys:reply", args=[token])
