"""Compose and send: drafts (created and edited by the compose form, the page's or the API's),
and sending, which creates every invitation in one transaction and hands them to delivery.
It must not send anything itself, nor know how messages travel (that is delivery's)."""

from django.db import transaction
from django.utils import timezone

from readiness import audit

from . import delivery, geo, selectors
from .models import Invitation, Poll


class PollNotDraft(Exception):
    pass


class PollNotSendable(Exception):
    """Nothing sensible would be sent; the message says why."""


def poll_create(*, form, request) -> Poll:
    """Save a valid compose form (the page's or the API's) as a draft of the requester."""
    form.instance.created_by = request.user
    poll = form.save()
    audit.record("poll.create", request=request, obj=poll)
    return poll


def poll_update(*, form, request) -> Poll:
    """Save a valid compose form over a draft; PollNotDraft if it was sent meanwhile."""
    with transaction.atomic():
        # Lock and look again: another coordinator may have sent it meanwhile.
        if Poll.objects.select_for_update().get(pk=form.instance.pk).state != Poll.State.DRAFT:
            raise PollNotDraft(form.instance.pk)
        poll = form.save()
    audit.record("poll.update", request=request, obj=poll,
                 changes={"fields": sorted(form.changed_data)})  # fmt: skip
    return poll


@transaction.atomic
def poll_send(*, poll: Poll, request=None) -> int:
    """Create every invitation of a draft poll in one transaction, then queue delivery.

    One invitation per targeted agency, to its primary contact, with the distance and travel
    estimate computed once. Pressing Send twice sends once: the second call finds the poll no
    longer a draft. Returns the number of invitations.
    """
    # Lock the poll: two concurrent sends must not both see a draft.
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if poll.state != Poll.State.DRAFT:
        raise PollNotDraft(poll.pk)
    if poll.deadline <= timezone.now():
        raise PollNotSendable("The deadline has passed: set a later one before sending.")
    invitations = [
        Invitation(
            poll=poll,
            agency=agency,
            contact=agency.primary_contacts[0],
            email=agency.primary_contacts[0].email,
            distance_km=geo.km(agency.distance_km),
            travel_minutes=geo.travel_minutes(geo.km(agency.distance_km)),
        )
        for agency in selectors.poll_recipients(poll=poll)
        if agency.primary_contacts  # the preview warns about the others
    ]
    if not invitations:
        raise PollNotSendable("No targeted agency has a usable contact: nobody would be asked.")
    Invitation.objects.bulk_create(invitations, batch_size=1000)
    poll.state = Poll.State.OPEN
    poll.sent_at = timezone.now()
    poll.save(update_fields=["state", "sent_at", "updated_at"])
    audit.record("poll.send", request=request, obj=poll, changes={"invitations": len(invitations)})
    ids = list(Invitation.objects.filter(poll=poll).order_by("pk").values_list("pk", flat=True))
    delivery.queue(ids)
    return len(ids)
