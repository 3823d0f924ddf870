"""The SMS channel: one short text per invitation (purpose first, destination, deadline, how to
answer by text with the invitation's reply code, and a short link to the form), sent through the
provider chosen by settings (providers.py). Like the email channel, it builds, sends and
reports; delivery and chasing decide what happens to an invitation."""

import contextlib
import logging
import secrets

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from agencies.models import SpecialTeam

from .. import selectors
from ..models import Invitation, MemberAsk, Poll
from . import providers
from .email import targeted
from .links import issue_links

logger = logging.getLogger(__name__)

CODE_DIGITS = 4


# Codes are unique per number because they are given out one batch at a time: two sends at once
# (two polls, or a poll and a commander's forward to members) could each pick a code the other
# is about to store. A lock held until the transaction ends orders them (PostgreSQL; SQLite
# writes one transaction at a time anyway): the second reads the first's codes once committed.
CODES_LOCK = 0x52454144  # pg_advisory_xact_lock's key for reply codes


def lock_reply_codes() -> None:
    """Call inside the transaction that stores the codes, before reading the taken ones.

    Always after the poll's own row lock, never before: every flow that gives out codes
    (sending, waves, adding agencies, escalation, a forward to members) locks its poll first
    and no other poll after, so the order is the same everywhere and no two can deadlock. The
    cost: behind a large send, such a flow holds its poll's row while it waits, and answers to
    that poll wait with it (they do not fail)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("reply codes must be given out inside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CODES_LOCK])


def assign_reply_codes(invitations: list[Invitation]) -> None:
    """Give each unsaved text invitation a reply code that no other open invitation to the same
    number holds (codes are only unique per number: the number and the code together find the
    invitation). One query for the whole batch, under lock_reply_codes."""
    mobiles = {i.mobile for i in invitations if i.mobile}
    if not mobiles:
        return
    lock_reply_codes()
    taken: dict[str, set[str]] = {m: set() for m in mobiles}
    open_ = (Poll.State.OPEN, Poll.State.SENDING)
    for mobile, code in [
        *Invitation.objects.filter(mobile__in=mobiles, poll__state__in=open_)
        .order_by()
        .values_list("mobile", "reply_code"),
        # A commander may be on a roster too: their members' codes are taken as well.
        *MemberAsk.objects.filter(member__mobile__in=mobiles, poll__state__in=open_)
        .order_by()
        .values_list("member__mobile", "reply_code"),
    ]:
        taken[mobile].add(code)
    for invitation in invitations:
        if not invitation.mobile:
            continue
        used = taken[invitation.mobile]
        while True:
            code = f"{secrets.randbelow(9000) + 1000}"  # 4 digits, never a leading zero
            if code not in used:
                break
        used.add(code)
        invitation.reply_code = code


LETTERS = "ABCDEFGH"


def team_letters(teams) -> dict:
    """{"A": team, "B": team, ...} for the targeted teams, in the reply form's order (type, then
    name): the letters a text lists and an answer by text uses."""
    ordered = sorted(teams, key=lambda t: (t.team_type.sort_order, t.name))[: len(LETTERS)]
    return dict(zip(LETTERS, ordered, strict=False))


def prefetch(invitations):
    return invitations.select_related(
        "poll", "poll__requesting_agency", "agency", "contact"
    ).prefetch_related(
        Prefetch(
            "agency__teams",
            queryset=SpecialTeam.objects.filter(active=True).select_related("team_type"),
            to_attr="active_teams",
        )
    )


def _when(moment) -> str:
    local = timezone.localtime(moment)
    return f"{local:%a %b} {local.day} {local:%H:%M} {local.tzname()}"


def text_body(invitation: Invitation, url: str, *, reminder: bool = False, targeted=None) -> str:
    """The text, purpose first. Kept to two SMS segments for a usual title and destination."""
    poll = invitation.poll
    if poll.purpose == Poll.Purpose.REQUEST:
        head = "REQUEST FOR ASSISTANCE"
        if poll.requesting_agency_id:
            head += f" from {poll.requesting_agency.name}"
    else:
        head = "PLANNING SURVEY (no request yet)"
    if reminder:
        head = f"REMINDER, no answer yet. {head}"
    need = f" Need {poll.officers_needed} officers." if poll.officers_needed else ""
    code = invitation.reply_code
    letters = team_letters(targeted or [])
    if len(letters) > 1:
        listed = ", ".join(f"{k}={t.name[:20]}" for k, t in letters.items())
        how = f"Reply per team ({listed}): {code} Y A <officers> <minutes to leave> B ..., "
    else:
        how = f"Reply {code} Y <officers> <minutes to leave>, "
    return (
        f"{head}: {poll.title}. To {poll.destination_name}.{need} "
        f"Answer by {_when(poll.deadline)}. {how}"
        f"{code} N <reason>, or {code} C <officers> <minutes> <conditions>. Form: {url}"
    )


def build(invitations: list[Invitation], *, reminder: bool = False) -> list[tuple]:
    """[(invitation, Text or the exception that stopped building it)], each with a fresh link.
    128-bit tokens keep the link short; only their hashes are stored."""
    tokens = issue_links(invitations, nbytes=16)
    callback = settings.SITE_URL + reverse("surveys:sms-status")
    targets, built = {}, []
    for inv in invitations:
        try:
            if inv.poll_id not in targets:
                targets[inv.poll_id] = selectors.Targets.of(inv.poll)
            teams = [t for t in inv.agency.active_teams if targeted(t, targets[inv.poll_id])]
            url = settings.SITE_URL + reverse("surveys:reply", args=[tokens[inv.pk]])
            body = text_body(inv, url, reminder=reminder, targeted=teams)
            built.append((inv, providers.Text(to=inv.mobile, body=body, status_callback=callback)))
        except Exception as exc:
            logger.exception("invitation %s: the text could not be built", inv.pk)
            built.append((inv, exc))
    return built


class SmsChannel:
    name = "sms"

    def prefetch(self, invitations):
        return prefetch(invitations)

    def build(self, invitations: list[Invitation], *, reminder: bool = False) -> list[tuple]:
        return build(invitations, reminder=reminder)

    @contextlib.contextmanager
    def sender(self):
        """Yields send(text) -> Result through the provider; send raises Unreachable when the
        provider cannot be reached at all."""
        yield providers.provider().send


def sms_for(contact, poll, now) -> dict:
    """The fields of a text invitation to `contact`: a planning survey waits out the contact's
    quiet hours; a request for assistance does not."""
    fields = {"channel": Invitation.Channel.SMS, "email": "", "mobile": contact.mobile}
    if poll.purpose == Poll.Purpose.PLANNING and contact.quiet_at(now):
        fields["next_attempt_at"] = contact.quiet_ends_after(now)
    return fields
