"""Compose and send: drafts (created and edited by the compose form, the page's or the API's),
and sending, which creates every invitation in one transaction and hands them to delivery.
It must not send anything itself, nor know how messages travel (that is delivery's)."""

from django.db import transaction
from django.utils import timezone

from readiness import audit

from . import channels, delivery, geo, selectors, waves
from .models import Poll


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

    One invitation per targeted agency and channel of its primary contact (email, text or both),
    with the distance and travel estimate computed once; a planning survey's texts wait out the
    contact's quiet hours. Pressing Send twice sends once: the second call finds the poll no
    longer a draft. Returns the number of agencies asked.
    """
    # Lock the poll: two concurrent sends must not both see a draft.
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if poll.state != Poll.State.DRAFT:
        raise PollNotDraft(poll.pk)
    if poll.deadline <= timezone.now():
        raise PollNotSendable("The deadline has passed: set a later one before sending.")
    now = timezone.now()
    recipients = list(selectors.poll_recipients(poll=poll))
    if poll.wave_rings:  # in waves: the nearest ring now, the others as the rule decides
        poll.sent_at = now  # the waves' figures count from the call
        recipients = waves.waves_start(poll=poll, recipients=recipients, now=now)
    invitations = [
        invitation
        for agency in recipients
        if agency.primary_contacts  # the preview warns about the others
        for invitation in channels.invitations_for(
            poll,
            agency,
            agency.primary_contacts[0],
            now=now,
            distance_km=geo.km(agency.distance_km),
            travel_minutes=geo.travel_minutes(geo.km(agency.distance_km)),
        )
    ]
    if not invitations:
        raise PollNotSendable("No targeted agency has a usable contact: nobody would be asked.")
    channels.save_invitations(invitations)
    poll.state = Poll.State.OPEN
    poll.sent_at = now
    poll.save(update_fields=["state", "sent_at", "waves_state", "updated_at"])
    agencies = len({i.agency_id for i in invitations})
    audit.record("poll.send", request=request, obj=poll,
                 changes={"agencies": agencies, "invitations": len(invitations)})  # fmt: skip
    delivery.queue_new(invitations, now)
    return agencies


COPIED_FIELDS = (
    "purpose", "requesting_agency", "requesting_person", "officers_needed", "needed_team_type",
    "requirements", "message", "situation", "destination_name", "destination_latitude",
    "destination_longitude", "target_kinds", "target_radius_km", "reminder_hours_before",
    "escalate_after_hours", "reply_digest", "wave_by", "wave_rings", "wave_wait_minutes",
    "wave_waits", "wave_count_conditional",
)  # fmt: skip
TARGET_SETS = ("target_regions", "target_team_types", "target_levels", "target_agencies",
               "required_qualifications")  # fmt: skip


@transaction.atomic
def poll_duplicate(*, poll: Poll, request) -> Poll:
    """A new draft like `poll` (any state: a template): its question, destination, targets and
    chasing, with a deadline as far ahead as the original's was from its sending, and no need
    time (a need's time belongs to one event). Audited with its source."""
    now = timezone.now()
    span = poll.deadline - (poll.sent_at or poll.created_at)
    copy = Poll(
        **{name: getattr(poll, name) for name in COPIED_FIELDS},
        title=f"Copy of {poll.title}"[: Poll._meta.get_field("title").max_length],
        deadline=now + max(span, timezone.timedelta(hours=1)),
        created_by=request.user,
    )
    copy.save()
    for name in TARGET_SETS:
        getattr(copy, name).set(getattr(poll, name).all())
    audit.record("poll.duplicate", request=request, obj=copy, changes={"from": poll.pk})
    return copy


def send_warnings(
    *,
    recipients: list,
    deadline=None,
    reminder_hours=(),
    needed_by=None,
    requesting_agency_id=None,
    teams_targeted: bool = False,
    now=None,
) -> list[str]:
    """What a coordinator should see before sending, in plain words: nothing is refused, each
    is a likely mistake (reminders already past, the requester asking itself, answers due after
    the officers are needed, agencies that only contribute to another agency's team)."""
    now = now or timezone.now()
    warnings = []
    if deadline:
        past = sorted(h for h in reminder_hours if deadline - timezone.timedelta(hours=h) <= now)
        if past:
            hours = ", ".join(f"{h}-hour" for h in past)
            warnings.append(
                f"The {hours} reminder{'s' if len(past) > 1 else ''} would fall before now for "
                f"this deadline ({timezone.localtime(deadline):%a %H:%M}): "
                f"{'they' if len(past) > 1 else 'it'} will be skipped."
            )
        if needed_by and deadline > needed_by:
            warnings.append(
                f"Answers are due ({timezone.localtime(deadline):%a %H:%M}) after the officers "
                f"are needed ({timezone.localtime(needed_by):%a %H:%M}): set the deadline "
                "before the need's time, or answers may come too late to act on."
            )
    if requesting_agency_id:
        asker = next((a for a in recipients if a.pk == requesting_agency_id), None)
        if asker is not None:
            warnings.append(
                f"{asker.name} requested the assistance and is among the recipients: it will "
                "be asked to send officers to itself. Leave it out unless that is meant."
            )
    if teams_targeted:
        members_only = [a.name for a in recipients if not getattr(a, "targeted_teams", None)]
        if members_only:
            shown = ", ".join(members_only[:3]) + (", …" if len(members_only) > 3 else "")
            warnings.append(
                f"{len(members_only)} agenc{'y is' if len(members_only) == 1 else 'ies are'} "
                f"listed with 0 officers ({shown}): they host no targeted team and only "
                "contribute officers to another agency's team, whose host answers for it."
            )
    return warnings
