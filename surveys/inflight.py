"""Managing a poll in flight: add agencies to an open poll, re-issue an agency's reply link or
send the poll to another of its contacts, reopen a poll closed before its deadline, and send a
test of the poll's email to oneself. Each is audited, and each hands messages to delivery (or
to a task) once the transaction commits; none sends anything itself.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from agencies.models import Agency, Contact
from readiness import audit

from . import channels, delivery, geo, jobs
from .chasing import CLOSED_EARLY
from .models import Invitation, InvitationLink, Poll, ReplyVersion


class NotPossible(Exception):
    """The action cannot be done to this poll or invitation now; the message says why."""


def _lock(poll: Poll, *states) -> Poll:
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if poll.state not in states:
        raise NotPossible(
            f"This poll is {poll.get_state_display().lower()}: only an "
            f"{' or '.join(Poll.State(s).label.lower() for s in states)} poll can do this."
        )
    return poll


def _invitations(poll: Poll, agency: Agency, contact: Contact, distance: float) -> list:
    """Unsaved invitations to `contact`, one per channel they are reached by."""
    return channels.invitations_for(
        poll, agency, contact, now=timezone.now(), distance_km=geo.km(distance),
        travel_minutes=geo.travel_minutes(geo.km(distance)),
    )  # fmt: skip


@dataclass
class Added:
    invited: list[str] = field(default_factory=list)
    already_asked: list[str] = field(default_factory=list)
    no_contact: list[str] = field(default_factory=list)

    def message(self) -> str:
        parts = []
        if self.invited:
            parts.append(f"Invited {len(self.invited)}: {', '.join(self.invited)}.")
        if self.already_asked:
            parts.append(f"Already asked: {', '.join(self.already_asked)}.")
        if self.no_contact:
            parts.append(f"No active primary contact, not asked: {', '.join(self.no_contact)}.")
        return " ".join(parts) or "No agency was chosen."


@transaction.atomic
def poll_add_agencies(*, poll: Poll, agencies, request=None) -> Added:
    """Invite more agencies to an open poll, each once, to its primary contact, at once."""
    poll = _lock(poll, Poll.State.OPEN, Poll.State.SENDING)
    asked = set(poll.invitations.values_list("agency_id", flat=True))
    primaries = Prefetch(
        "contacts",
        queryset=Contact.objects.filter(role=Contact.Role.PRIMARY, active=True),
        to_attr="primaries",
    )
    result, invitations = Added(), []
    # The distance as sending computes it (in the database), so one agency shows one figure.
    distance = geo.distance_km_expression(poll.destination_latitude, poll.destination_longitude)
    chosen = Agency.objects.filter(pk__in=[a.pk for a in agencies]).annotate(distance_km=distance)
    for agency in chosen.prefetch_related(primaries).order_by("name"):
        if agency.pk in asked:
            result.already_asked.append(agency.name)
        elif not agency.primaries:
            result.no_contact.append(agency.name)
        else:
            invitations += _invitations(poll, agency, agency.primaries[0], agency.distance_km)
            result.invited.append(agency.name)
    if invitations:
        channels.save_invitations(invitations)
        poll.target_agencies.add(*{i.agency for i in invitations})
        audit.record(
            "poll.add_agencies",
            request=request,
            obj=poll,
            changes={"agencies": result.invited},
        )
        delivery.queue_new(invitations)
    return result


def _requeue(invitation_ids) -> None:
    Invitation.objects.filter(pk__in=invitation_ids).update(
        state=Invitation.State.QUEUED, attempts=0, failure_reason="", next_attempt_at=None,
        claim="", claimed_by="", claimed_at=None,
    )  # fmt: skip
    delivery.queue(list(invitation_ids))


@transaction.atomic
def invitation_reissue(*, invitation: Invitation, request=None) -> Invitation:
    """Send the invitation again with a new reply link; every earlier link stops working (one
    was forwarded to the wrong person, or withdrawn by mistake)."""
    _lock(invitation.poll, Poll.State.OPEN, Poll.State.SENDING)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.state == Invitation.State.SENDING:
        raise NotPossible("This invitation is being sent right now: try again in a minute.")
    InvitationLink.objects.filter(invitation=invitation).delete()
    Invitation.objects.filter(pk=invitation.pk).update(token_hash=None, revoked_at=None)
    # A confirmation still waiting would carry a fresh link to whoever answered by an old one.
    ReplyVersion.objects.filter(
        invitation=invitation, confirmation=ReplyVersion.Confirmation.DUE
    ).update(confirmation=ReplyVersion.Confirmation.FAILED)
    _requeue([invitation.pk])
    audit.record(
        "invitation.reissue", request=request, obj=invitation,
        object_repr=f"{invitation.agency} <{invitation.email}>",
    )  # fmt: skip
    return invitation


@transaction.atomic
def invitation_send_to_contact(
    *, invitation: Invitation, contact: Contact, request=None
) -> Invitation:
    """Send the poll to another active contact of the invited agency, with their own link; the
    first invitation keeps working, and either may answer for the agency."""
    poll = _lock(invitation.poll, Poll.State.OPEN, Poll.State.SENDING)
    if contact.agency_id != invitation.agency_id or not contact.active:
        raise NotPossible("Choose an active contact of the same agency.")
    if poll.invitations.filter(contact=contact).exists():
        raise NotPossible(f"{contact.name} was already sent this poll: re-issue their link.")
    agency = invitation.agency
    made = channels.save_invitations(_invitations(poll, agency, contact, invitation.distance_km))
    audit.record(
        "invitation.send_to_contact", request=request, obj=made[0],
        object_repr=f"{agency} <{contact.email}>",
        changes={"instead_of": invitation.email or invitation.mobile,
                 "channels": [i.channel for i in made]},
    )  # fmt: skip
    delivery.queue_new(made)
    return made[0]


@transaction.atomic
def poll_reopen(*, poll: Poll, request=None) -> Poll:
    """Open again a poll closed before its deadline; invitations the close withdrew are sent."""
    poll = _lock(poll, Poll.State.CLOSED)
    if poll.deadline <= timezone.now():
        raise NotPossible("The deadline has passed: duplicate the poll to ask again.")
    poll.state, poll.closed_at = Poll.State.OPEN, None
    poll.save(update_fields=["state", "closed_at", "updated_at"])
    withdrawn = list(
        poll.invitations.filter(
            state=Invitation.State.FAILED, failure_reason=CLOSED_EARLY
        ).values_list("pk", flat=True)
    )
    if withdrawn:
        _requeue(withdrawn)
    audit.record("poll.reopen", request=request, obj=poll, changes={"requeued": len(withdrawn)})
    return poll


def poll_test_email(*, poll: Poll, request) -> str:
    """Queue the poll's email, as the first agency asked would get it, to the signed-in
    person. Its link records nothing. Returns the address."""
    jobs.after_commit("surveys.tasks.send_test_email", poll.pk, request.user.pk)
    audit.record("poll.test_email", request=request, obj=poll,
                 changes={"to": request.user.email})  # fmt: skip
    return request.user.email


def poll_send_test_email(*, poll_id: int, user_id: int) -> bool:
    from readiness.models import User

    poll = Poll.objects.select_related("requesting_agency").get(pk=poll_id)
    user = User.objects.get(pk=user_id)
    channels.EMAIL.send_test(poll=poll, to=user.email, name=user.get_full_name())
    return True
