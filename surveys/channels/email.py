"""The email channel: one message per invitation (HTML and text, with a fresh secret reply
link), sent over SMTP. A recipient whose server refuses or hangs up costs only its own message:
the sender reconnects for the next. It must not decide what happens to an invitation (that is
delivery's and chasing's job): it builds, sends and reports."""

import contextlib
import logging
import smtplib
import socket

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from agencies.models import Agency, Contact, SpecialTeam
from readiness import mail

from .. import geo, mailbox, selectors
from ..models import Invitation
from .base import PERMANENT, SENT, TRANSIENT, Result, Unreachable
from .links import issue_links

logger = logging.getLogger(__name__)


class TransientFailure(Exception):
    """Worth trying again later (a 4xx reply, a refused or dropped connection)."""


class PermanentFailure(Exception):
    """Will not get better by retrying (a 5xx reply: no such mailbox, policy refusal)."""


def classify_smtp_error(exc: Exception) -> Exception:
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        code = min(codes) if codes else None
    if code is not None and 500 <= code < 600:
        return PermanentFailure(f"{code} {_smtp_text(exc)}".strip())
    if isinstance(exc, smtplib.SMTPException | OSError | socket.timeout) or code is not None:
        return TransientFailure(f"{code or ''} {_smtp_text(exc) or exc}".strip())
    return PermanentFailure(f"could not send: {exc!r}")


def _smtp_text(exc) -> str:
    message = getattr(exc, "smtp_error", b"")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        message = b"; ".join(m for _, m in exc.recipients.values())
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def prefetch(invitations):
    """Everything the email shows, loaded up front (no query per invitation)."""
    return invitations.select_related(
        "poll__created_by", "poll__requesting_agency", "poll__needed_team_type", "agency",
        "contact",
    ).prefetch_related(
        "poll__required_qualifications",
        Prefetch(
            "agency__teams",
            queryset=SpecialTeam.objects.filter(active=True).select_related("team_type"),
            to_attr="active_teams",
        ),
        Prefetch(
            "agency__contacts",
            queryset=Contact.objects.filter(role=Contact.Role.PRIMARY),
            to_attr="primary_contacts",
        ),
    )  # fmt: skip


def build(invitations: list[Invitation], *, reminder: bool = False) -> list[tuple]:
    """[(invitation, email or the exception that stopped building it)], each email with a fresh
    secret reply link: one that cannot be built costs only itself.

    Only the hash of a link is stored (saved here, before anything is sent). Earlier links of
    the same invitation keep working until the poll ends: a message sent twice (the server
    stored it, then dropped the connection), a reminder, or an earlier email forwarded.
    """
    tokens = issue_links(invitations, nbytes=32)  # 256 bits each
    targets = {}  # the teams each email lists are those the poll targets
    built = []
    for inv in invitations:
        try:
            if inv.poll_id not in targets:
                targets[inv.poll_id] = selectors.Targets.of(inv.poll)
            built.append((inv, _email(inv, tokens[inv.pk], reminder=reminder,
                                      targets=targets[inv.poll_id])))  # fmt: skip
        except Exception as exc:
            logger.exception("invitation %s: the email could not be built", inv.pk)
            built.append((inv, exc))
    return built


def targeted(team, targets) -> bool:
    if not targets.type_ids and not targets.levels:
        return True
    return team.team_type_id in targets.type_ids or (team.team_type_id, team.level) in set(
        targets.levels
    )


def _email(
    invitation: Invitation, token: str, *, reminder: bool, targets
) -> EmailMultiAlternatives:
    poll = invitation.poll
    primaries = invitation.agency.primary_contacts
    context = {
        "poll": poll,
        "invitation": invitation,
        "agency": invitation.agency,
        "contact": invitation.contact,
        "teams": [t for t in invitation.agency.active_teams if targeted(t, targets)],
        "primary": primaries[0] if invitation.is_escalation and primaries else None,
        "reply_url": settings.SITE_URL + reverse("surveys:reply", args=[token]),
        "deadline": timezone.localtime(poll.deadline),
        "reminder": reminder,
    }
    subject = f"{poll.get_purpose_display()}: {poll.title}"
    if reminder:
        subject = f"Reminder: {subject}"
    elif invitation.is_escalation:
        subject = f"No answer yet from {invitation.agency.name}: {subject}"
    headers = {}
    if invitation.pk:  # not a test email: replies and bounces find the invitation
        headers["Message-ID"] = mailbox.message_id(invitation.pk)
        if settings.REPLY_MAILBOX:
            headers["Reply-To"] = mailbox.reply_address(invitation.pk)
            context["reply_by_email"] = True
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # names from a CSV may carry line breaks
        body=render_to_string("surveys/email/invitation.txt", context),
        to=[invitation.email],
        headers=headers,
    )
    message.attach_alternative(
        render_to_string("surveys/email/invitation.html", context), "text/html"
    )
    return message


class EmailChannel:
    """The channel's face for delivery and chasing."""

    name = "email"

    def prefetch(self, invitations):
        return prefetch(invitations)

    def build(self, invitations: list[Invitation], *, reminder: bool = False) -> list[tuple]:
        return build(invitations, reminder=reminder)

    def send_test(self, *, poll, to: str, name: str = "") -> None:
        """The poll's email as the first agency asked (or the requester) would get it, sent to
        `to`, marked as a test, with a link that records nothing."""
        agency = selectors.poll_recipients(poll=poll).first() or poll.requesting_agency
        if agency is None:
            agency = Agency(name="Example Police Department")
            agency.active_teams = []
        else:
            agency.active_teams = list(agency.teams.filter(active=True).select_related("team_type"))
        agency.primary_contacts = []
        invitation = Invitation(
            poll=poll, agency=agency, contact=Contact(name=name or to, email=to), email=to,
            distance_km=geo.km(getattr(agency, "distance_km", 0) or 0),
        )  # fmt: skip
        invitation.travel_minutes = geo.travel_minutes(invitation.distance_km)
        message = _email(invitation, "test-link-records-nothing", reminder=False,
                         targets=selectors.Targets.of(poll))  # fmt: skip
        message.subject = f"[TEST to yourself] {message.subject}"
        mailers.default.send_messages([message])

    @contextlib.contextmanager
    def sender(self):
        """Yields send(message) -> Result over one SMTP connection, reconnecting after a
        recipient's server hangs up; send raises Unreachable when it cannot connect at all."""
        connection = mailers.default
        state = {"open": False}

        def send(message) -> Result:
            if not state["open"]:
                try:
                    connection.open()
                except SoftTimeLimitExceeded:
                    raise
                except (smtplib.SMTPException, OSError) as exc:
                    raise Unreachable(str(classify_smtp_error(exc))) from exc
                state["open"] = True
            try:
                if not _send_fast(connection, message):
                    connection.send_messages([message])
            except SoftTimeLimitExceeded:
                raise  # the task's time is up: the caller releases what was not finished
            except Exception as exc:
                failure = classify_smtp_error(exc)
                dropped = isinstance(exc, smtplib.SMTPServerDisconnected) or (
                    isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
                )
                if dropped or _dead(connection):
                    # This recipient's server hung up: reconnect for the next message.
                    with contextlib.suppress(Exception):
                        connection.close()
                    state["open"] = False
                outcome = TRANSIENT if isinstance(failure, TransientFailure) else PERMANENT
                return Result(outcome, str(failure))
            return Result(SENT)

        try:
            yield send
        finally:
            with contextlib.suppress(Exception):
                connection.close()


def _send_fast(connection, message) -> bool:
    """Send over Django's open SMTP connection with the bytes of readiness.mail.smtp_bytes, as
    Django's own _send would but without its costly building; False when the backend or the
    message is of another kind (the caller lets Django send it)."""
    if not isinstance(connection, SMTPBackend) or type(connection)._send is not SMTPBackend._send:
        return False  # another backend (the console, locmem in tests), or one that sends its way
    if connection.connection is None:
        return False
    data = mail.smtp_bytes(message)
    if data is None:
        return False
    recipients = message.recipients()
    envelope = [mail.envelope_address(a) for a in [message.from_email, *recipients]]
    if not recipients or None in envelope:
        return False
    connection.connection.sendmail(envelope[0], envelope[1:], data)
    return True


def _dead(connection) -> bool:
    """After an error, is the SMTP conversation still usable? (RSET answers if it is.)"""
    smtp = getattr(connection, "connection", None)
    if smtp is None:
        return False
    try:
        return smtp.rset()[0] != 250
    except (smtplib.SMTPException, OSError):
        return True
