"""An agency's own upkeep: its commander (or a coordinator) edits its teams, contacts and staffing
figures and confirms the record is current. Every change is audited with what changed; the
import (services.registry_import) stays the way to change many agencies at once.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from readiness import audit
from readiness.models import AuditEvent, User

from .models import Agency, Contact, SpecialTeam

logger = logging.getLogger(__name__)

AGENCY_FACTS = ("sworn_officers", "min_home_staffing", "address", "city", "county")
TEAM_FIELDS = (
    "name",
    "team_type",
    "level",
    "members",
    "commander_name",
    "commander_phone",
    "notes",
    "active",
)
CONTACT_FIELDS = (
    "name", "title", "email", "mobile", "phone", "channels", "quiet_start", "quiet_end", "role",
    "active",
)  # fmt: skip


class UpkeepRefused(Exception):
    """A change that would leave the record unusable; the message says what to do instead."""


def _values(obj, fields) -> dict:
    return {f: getattr(obj, f) for f in fields}


def _save(obj, before: dict, fields, action: str, request, agency: Agency) -> dict:
    """Save `obj` and audit what changed ({} and no write when nothing did)."""
    created = not obj.pk
    after = _values(obj, fields)
    if created:  # a new row: the values it was given, not every empty field
        after = {f: v for f, v in after.items() if v not in ("", None)}
    changes = audit.diff(before, after)
    if not created and not changes:
        return {}
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise UpkeepRefused(
            "Someone else changed this agency at the same time: reload the page and try again."
        ) from exc
    audit.record(
        f"{action}.{'create' if created else 'update'}",
        request=request,
        obj=obj,
        changes={**changes, "agency": agency.code},
    )
    return changes


def agency_facts_save(agency: Agency, before: dict, *, request) -> dict:
    """Save the staffing and address figures a commander keeps (the form already set them)."""
    return _save(agency, before, AGENCY_FACTS, "agency", request, agency)


def team_save(team: SpecialTeam, before: dict, *, request) -> dict:
    """Save a team of `team.agency` (new or edited); a new one gets a stable key from its name."""
    if not team.pk:
        base = slugify(f"{team.agency.code}-{team.name}")[:56] or f"{team.agency.code}-team"
        code, n = base, 1
        while SpecialTeam.objects.filter(code__iexact=code).exists():
            n += 1
            code = f"{base}-{n}"
        team.code = code
    return _save(team, before, TEAM_FIELDS, "team", request, team.agency)


@transaction.atomic
def contact_save(contact: Contact, before: dict, *, primary: bool, request) -> dict:
    """Save a contact; making it primary demotes the agency's current primary in the same
    transaction. The primary cannot be retired or demoted directly: invitations go to the
    primary, so another contact is made primary instead."""
    agency = contact.agency
    was_primary = before.get("role") == Contact.Role.PRIMARY
    if was_primary and not primary:
        raise UpkeepRefused(
            "Polls go to the primary contact: make another contact primary instead of "
            "demoting this one."
        )
    if primary and not contact.active:
        raise UpkeepRefused("The primary contact must be active: polls are sent to them.")
    if primary and not was_primary:
        current = list(
            Contact.objects.select_for_update()
            .filter(agency=agency, role=Contact.Role.PRIMARY)
            .exclude(pk=contact.pk)
        )
        for old in current:
            old_before = _values(old, CONTACT_FIELDS)
            old.role = Contact.Role.ALTERNATE
            _save(old, old_before, CONTACT_FIELDS, "contact", request, agency)
    contact.role = Contact.Role.PRIMARY if primary else Contact.Role.ALTERNATE
    return _save(contact, before, CONTACT_FIELDS, "contact", request, agency)


def agency_verify(agency: Agency, *, request, now=None) -> None:
    """Record that the agency's commander (or a coordinator) confirmed the record is current."""
    now = now or timezone.now()
    previous = agency.verified_at
    Agency.objects.filter(pk=agency.pk).update(
        verified_at=now, verified_by=request.user, verify_reminded_at=None
    )
    agency.verified_at, agency.verified_by, agency.verify_reminded_at = now, request.user, None
    audit.record(
        "agency.verify",
        request=request,
        obj=agency,
        changes=audit.diff({"verified_at": previous}, {"verified_at": now}),
    )


def verification_due(agency: Agency, *, now=None) -> bool:
    now = now or timezone.now()
    every = timezone.timedelta(days=settings.AGENCY_VERIFY_EVERY_DAYS)
    return agency.verified_at is None or agency.verified_at <= now - every


def recent_changes(agency: Agency, *, limit: int = 20) -> list[AuditEvent]:
    """The latest audited changes to the agency, its teams and its contacts."""
    teams = [str(pk) for pk in agency.teams.values_list("pk", flat=True)]
    contacts = [str(pk) for pk in agency.contacts.values_list("pk", flat=True)]
    return list(
        AuditEvent.objects.filter(
            Q(object_type="agency", object_id=str(agency.pk))
            | Q(object_type="specialteam", object_id__in=teams)
            | Q(object_type="contact", object_id__in=contacts)
        )
        .select_related("actor")
        .order_by("-at")[:limit]
    )


def send_verification_reminders(now) -> int:
    """Remind each agency whose record is due for confirmation and that was not reminded in the
    last AGENCY_VERIFY_REMIND_DAYS. Each is claimed by a conditional UPDATE (two beat runs do
    not both send); a failed send gives the claim back, so the next run tries again."""
    every = timezone.timedelta(days=settings.AGENCY_VERIFY_EVERY_DAYS)
    again = timezone.timedelta(days=settings.AGENCY_VERIFY_REMIND_DAYS)
    due = (
        Agency.objects.filter(active=True)
        .filter(Q(verified_at__isnull=True) | Q(verified_at__lte=now - every))
        .filter(Q(verify_reminded_at__isnull=True) | Q(verify_reminded_at__lte=now - again))
        .order_by("pk")
    )
    sent = 0
    for agency in due:
        to = _reminder_recipients(agency.pk)
        if not to:
            continue
        claim = Agency.objects.filter(pk=agency.pk, verify_reminded_at=agency.verify_reminded_at)
        if agency.verify_reminded_at is None:
            claim = Agency.objects.filter(pk=agency.pk, verify_reminded_at__isnull=True)
        if not claim.update(verify_reminded_at=now):
            continue  # another run took it
        try:
            _send_reminder(agency, to)
        except Exception:
            Agency.objects.filter(pk=agency.pk, verify_reminded_at=now).update(
                verify_reminded_at=agency.verify_reminded_at
            )
            logger.exception("Verification reminder to agency %s failed", agency.pk)
            continue
        sent += 1
    return sent


def _reminder_recipients(agency_id: int) -> list[str]:
    """The agency's commanders with a login, and its primary contact."""
    emails = list(
        User.objects.filter(
            agency_id=agency_id, role=User.Role.COMMANDER, is_active=True
        ).values_list("email", flat=True)
    )
    emails += Contact.objects.filter(
        agency_id=agency_id, role=Contact.Role.PRIMARY, active=True
    ).values_list("email", flat=True)
    return sorted({e.lower(): e for e in emails if e}.values())


def _send_reminder(agency: Agency, to: list[str]) -> None:
    body = render_to_string(
        "agencies/email/verify_reminder.txt",
        {
            "agency": agency,
            "every_days": settings.AGENCY_VERIFY_EVERY_DAYS,
            "url": settings.SITE_URL + reverse("agencies:agency-detail", args=[agency.pk]),
        },
    )
    subject = f"Please confirm {agency.name}'s teams and contacts are current"
    mailers.default.send_messages(
        [EmailMultiAlternatives(subject=" ".join(subject.split()), body=body, to=to)]
    )
