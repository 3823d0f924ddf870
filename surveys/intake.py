"""Answers that come in as text messages or email replies: a text is matched to an invitation
by the sender's number and the reply code, an email by its signed Reply-To address (and a
sender of the agency); both are parsed by the short grammar (sms_grammar), checked by the very
forms the web page uses and saved by the same reply service (versions, conflicts, audit). Each
message is kept (InboundMessage): the same message id twice is one answer; what cannot be
understood waits for a person. The sender is told, by the same channel, what was recorded or
exactly what was not understood and how to fix it, with a link to the form. A bounce of an
invitation email fails it with the reason and asks the agency's alternates at once."""

import hashlib
import logging
import re
from contextlib import nullcontext, suppress
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agencies.models import Contact, TeamMember
from agencies.phones import to_e164
from readiness import audit, bulk
from readiness.log_filters import mask_secrets

from . import chasing, jobs, mailbox, member_texts, replies, selectors, sms_grammar, text_answers
from .channels.links import one_more_link
from .channels.sms import team_letters
from .forms import ReplySubmission
from .models import InboundMessage, Invitation

logger = logging.getLogger(__name__)
E164 = re.compile(r"\+[1-9][0-9]{6,14}")

HELP = (
    "Readiness mutual-aid polls. Answer with the code from the poll's text: "
    "<code> Y <officers> <minutes to leave>, <code> N <reason>, or "
    "<code> C <officers> <minutes> <conditions>. Reply STOP to get no more texts."
)


@dataclass
class Handled:
    response: str  # what to text back ("" for a replay: the first answer was sent already)
    message: InboundMessage | None


def _number(sender: str) -> str:
    try:
        return to_e164(sender) or sender
    except ValueError:
        return sender.strip()[:254]


def text_received(*, sender: str, body: str, message_id: str, now=None) -> Handled:
    """Handle one inbound text, all or nothing. The same message id twice is one answer. On
    PostgreSQL a first answer is one statement, which commits by itself: it is tried without a
    transaction; anything else is handled (again, from the start) in one."""
    now = now or timezone.now()
    # As providers send it, E.164 is looked up unparsed (parsing costs 0.1 ms); a number with
    # no open invitation under that form is parsed and looked up again, as stored. Read once
    # for both tries.
    sender = raw if E164.fullmatch(raw := sender.strip()) else _number(raw)
    candidates = selectors.open_texts(sender)
    if not candidates and sender != (number := _number(sender)):
        sender, candidates = number, selectors.open_texts(number)
    try:
        if connection.vendor == "postgresql":
            nested = transaction.atomic() if connection.in_atomic_block else nullcontext()
            with suppress(replies.NotInOneStatement), nested:
                return _received(sender, candidates, body, message_id, now, alone=True)
        with transaction.atomic():
            return _received(sender, candidates, body, message_id, now)
    except IntegrityError:
        if selectors.message_seen("sms", message_id[:200]):  # this message id was taken
            return _replayed(message_id, sender)
        raise


def _received(sender: str, candidates, body: str, message_id: str, now, *, alone=False) -> Handled:
    message = bulk.new(
        InboundMessage, channel="sms", message_id=message_id[:200], sender=sender,
        body=body[:5000], received_at=now, outcome=InboundMessage.Outcome.NOT_UNDERSTOOD,
    )  # fmt: skip
    message.new_links = []  # the links its response gives, saved with it
    response = _handle(message, candidates, now, alone=alone)
    # Kept without its link (a secret): the messages page and audit trail show this.
    message.response = mask_secrets(response)
    # Saved last, with its links, in one statement (a first answer's, or its own): a provider's
    # retry of this message id fails there and takes back all it did (one message, one answer;
    # no read before).
    if message.pk is None:
        if alone:  # nothing written: handled again, in a transaction
            raise replies.NotInOneStatement
        bulk.insert_together([group for group in ([message], message.new_links) if group])
    _audit_bad_input(message)
    return Handled(response, message)


def _replayed(message_id: str, sender: str) -> Handled:
    audit.record("sms.replayed", object_type="inboundmessage", object_repr=message_id[:300],
                 changes={"sender": sender})  # fmt: skip
    return Handled("", None)


def _audit_bad_input(message: InboundMessage) -> None:
    """What was not recorded is in the audit trail too (a good answer is, as reply.*)."""
    if message.outcome in (
        InboundMessage.Outcome.NOT_UNDERSTOOD,
        InboundMessage.Outcome.UNMATCHED,
        InboundMessage.Outcome.REFUSED,
    ):
        audit.record(
            f"{message.channel}.answer_{message.outcome}", obj=message,
            object_repr=f"{message.channel} from {message.sender}",
            changes={"invitation": message.invitation_id, "told": message.response[:300]},
        )  # fmt: skip


def _handle(message: InboundMessage, candidates: list, now, *, alone=False) -> str:
    """`candidates`: the sender's open text invitations (selectors.open_texts)."""
    code = sms_grammar.leading_code(message.body)
    ours = code and any(i.reply_code == code for i in candidates)  # codes: unique per number
    if alone and not ours:  # a member's text, a command, an answer without a code: in a transaction
        raise replies.NotInOneStatement
    if not ours and (ask := member_texts.ask_for(message.sender, message.body,
                                                 invited=bool(candidates))):  # fmt: skip
        return member_texts.answer(message, ask, now)
    try:
        parsed = sms_grammar.parse(message.body)
    except sms_grammar.ParseError as exc:
        if alone:
            raise replies.NotInOneStatement from None
        invitation = _match(message, exc.code, candidates, quiet=True)
        link = f" Or answer on the form: {form_link(invitation, message)}" if invitation else ""
        message.invitation = invitation
        return f"Not understood: {exc}{link}"
    if alone and parsed.command:
        raise replies.NotInOneStatement
    if parsed.command == "ask":  # "<code> ASK": the commander asks their team members
        return member_texts.forward(message, _match(message, parsed.code, candidates), now)
    if parsed.command:
        message.outcome = InboundMessage.Outcome.COMMAND
        return _command(message, parsed.command, now)
    invitation = _match(message, parsed.code, candidates)
    if invitation is None:
        message.outcome = InboundMessage.Outcome.UNMATCHED
        return message.response
    message.invitation = invitation
    return _apply(message, invitation, parsed, now, alone=alone)


def _match(message, code: str, candidates: list, *, quiet: bool = False) -> Invitation | None:
    """The sender's open invitation (of `candidates`, from open_texts) with this code, or
    their only one without a code. The number must be theirs: a code alone finds nothing."""
    if code:
        found = [i for i in candidates if i.reply_code == code]
        if len(found) == 1:
            return found[0]
        if found and quiet:
            return None  # never expected (codes are given out under a lock): apply to neither
        if found:
            links = " ".join(form_link(i, message) for i in found[:3])
            message.response = f"Code {code} is on several open polls: use the form. {links}"
        elif (
            closed := Invitation.objects.filter(
                channel="sms", mobile=message.sender, reply_code=code
            )
            .select_related("poll")
            .first()
        ):
            message.response = (
                f"The poll with code {code} ({closed.poll.title}) no longer takes answers: "
                f"it is {closed.poll.get_state_display().lower()}."
            )
        else:
            none = f"No open poll has code {code} for this number."
            message.response = none + _listing(candidates)
        return None
    if len(candidates) == 1:
        return candidates[0]
    if not quiet:
        message.response = (
            "No open poll is waiting for an answer from this number."
            if not candidates
            else "Several polls are open: start the answer with its code." + _listing(candidates)
        )
    return None


def _listing(candidates: list[Invitation]) -> str:
    if not candidates:
        return ""
    return " Open: " + "; ".join(f"{i.reply_code} {i.poll.title[:40]}" for i in candidates[:5])


def form_link(invitation: Invitation, message: InboundMessage | None = None) -> str:
    """A fresh link to the invitation's form (only its hash is kept, like every link): saved
    with the `message` whose response gives it (in the message's own statement), or at once."""
    link, url = one_more_link(invitation.pk, nbytes=16)
    if message is None:
        bulk.insert_together([[link]])  # one statement, no query compiling
    else:
        message.new_links.append(link)
    return url


def _command(message: InboundMessage, command: str, now) -> str:
    contacts = Contact.objects.filter(mobile=message.sender)
    if command == "stop":
        contacts.update(sms_stopped_at=now)
        TeamMember.objects.filter(mobile=message.sender).update(sms_stopped_at=now)
        audit.record("sms.stop", object_type="contact", object_repr=message.sender)
        return "You will get no more texts from Readiness. Reply START to get them again."
    if command == "start":
        contacts.update(sms_stopped_at=None)
        TeamMember.objects.filter(mobile=message.sender).update(sms_stopped_at=None)
        audit.record("sms.start", object_type="contact", object_repr=message.sender)
        return "Texts from Readiness are on again. " + HELP
    return HELP


def _apply(message: InboundMessage, invitation: Invitation, parsed, now, *, read=False,
           alone=False) -> str:  # fmt: skip
    """Save the answer over whatever is stored. An invitation not stamped with its agency's
    first answer (every answer stamps them all) reads nothing: none is stored. One stored
    after all (saved a moment ago, or without the stamp) is found by the first answer's insert,
    and the answer is then made again over it (`read`)."""
    poll, agency, contact = invitation.poll, invitation.agency, invitation.contact
    stamped = read or invitation.replied_at is not None
    if alone and stamped:  # not a first answer: in a transaction, before reading anything more
        raise replies.NotInOneStatement
    reply = selectors.stored_reply(poll=poll, agency=agency) if stamped else None
    teams, targeted = selectors.reply_teams(poll=poll, agency=agency, reply=reply)
    letters = team_letters([t for t in teams if t.pk in targeted])
    data, problem = text_answers.form_data(parsed, letters, contact, reply,
                                           invitation.travel_minutes)  # fmt: skip
    if problem:
        return f"Not understood: {problem} Or answer on the form: {form_link(invitation, message)}"
    submission = ReplySubmission(
        data, reply=reply, poll=poll, agency=agency, teams=teams, targeted_ids=targeted,
        estimate=invitation.travel_minutes,
    )  # fmt: skip
    if not submission.is_valid():
        errors = "; ".join(text.rstrip(".") for _, text in submission.error_summary()[:3])
        link = form_link(invitation, message)
        return f"Not recorded: {errors}. Fix and send again, or use the form: {link}"
    summary = text_answers.said_back(submission.answer()["decision"], submission.line_data())
    link, url = one_more_link(invitation.pk, nbytes=16)  # kept only where `url` is given
    again = "texting" if message.channel == "sms" else "replying"
    recorded = (f"Recorded for {agency.name}: {summary} Change it by {again} again before "
                f"{timezone.localtime(poll.deadline):%a %H:%M}, or: {url}")  # fmt: skip
    also = ()
    if message.pk is None:  # a text, saved last: with a first answer, in the answer's statement
        message.outcome, message.response = InboundMessage.Outcome.APPLIED, mask_secrets(recorded)
        also = [([message], "version_id"), ([*message.new_links, link], None)]
    try:
        version = replies.reply_submit(
            poll=poll, agency=agency, answer=submission.answer(), lines=submission.line_data(),
            base_version=reply.version if reply else 0, invitation=invitation, confirm=False,
            now=now, channel=message.channel, stored=reply, also=also, alone=alone,
        )  # fmt: skip
    except replies.ReplyRefused as exc:
        message.outcome = InboundMessage.Outcome.REFUSED
        why = REFUSALS.get(exc.reason, f"the poll no longer takes answers ({exc.reason}).")
        return f"Not recorded: {why}"
    except replies.ReplyConflict:
        if not stamped:  # an answer was stored: this one goes over it, as over any other
            return _apply(message, invitation, parsed, now, read=True)
        # Saved by someone else between our read and our write: tell them, keep nothing.
        message.outcome = InboundMessage.Outcome.REFUSED
        message.new_links.append(link)
        return f"Not recorded: the answer changed meanwhile. Check it: {url}"
    if version is None:
        message.outcome = InboundMessage.Outcome.UNCHANGED
        return f"Nothing changed: {agency.name}'s answer stands. {summary}"
    message.outcome, message.version = InboundMessage.Outcome.APPLIED, version
    if not (also and message.pk):  # not saved with the answer (an email's message is saved)
        message.new_links.append(link)
    return recorded


REFUSALS = {
    "closed": "the poll is closed (or past its deadline).",
    "cancelled": "the poll was cancelled.",
    "revoked": "this invitation was withdrawn by the coordinator.",
}


# Email replies ---------------------------------------------------------------------------------


def email_received(raw: bytes, *, now=None) -> InboundMessage | None:
    """Handle one email from the reply mailbox (or the inbound webhook), all or nothing; None
    when this message was handled before. The answer to the sender is emailed after commit."""
    now = now or timezone.now()
    if len(raw) > settings.INBOUND_EMAIL_MAX_BYTES:
        parsed = mailbox.Parsed(
            "sha256:" + hashlib.sha256(raw).hexdigest(), "", "", None, "",
            problem="the email is too large to read: write the answer in a short reply.",
        )  # fmt: skip
    else:
        parsed = mailbox.parse(raw)
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                channel="email", message_id=parsed.message_id, sender=parsed.sender[:254],
                body=(parsed.text or parsed.problem)[:5000], received_at=now,
                outcome=InboundMessage.Outcome.NOT_UNDERSTOOD,
            )  # fmt: skip
            message.new_links = []
            if parsed.bounce_of is not None or parsed.bounce_reason:
                _bounced(message, parsed, now)
            else:
                message.response = _email_answer(message, parsed, now)
            message.save(update_fields=["outcome", "invitation", "version", "response", "body"])
            if message.new_links:
                bulk.insert_together([message.new_links])
            _audit_bad_input(message)
            if message.response and parsed.sender:
                jobs.after_commit("surveys.tasks.send_intake_response", message.pk)
    except IntegrityError:
        if selectors.message_seen("email", parsed.message_id):
            return None  # already handled: a re-fetch after a crash, or a resent webhook
        raise
    return message


def _email_answer(message: InboundMessage, parsed, now) -> str:
    invitation = (
        Invitation.objects.select_related("poll", "agency", "contact")
        .filter(pk=parsed.invitation_pk, channel=Invitation.Channel.EMAIL)
        .first()
        if parsed.invitation_pk
        else None
    )
    if invitation is None:
        message.outcome = InboundMessage.Outcome.UNMATCHED
        return "" if not parsed.sender else (
            "This email did not reach an invitation: reply to the poll's email itself, or use "
            "the link in it."
        )  # fmt: skip
    message.invitation = invitation
    agency_emails = {
        e.lower()
        for e in invitation.agency.contacts.filter(active=True).values_list("email", flat=True)
    }
    if parsed.sender not in agency_emails | {invitation.email.lower()}:
        message.outcome = InboundMessage.Outcome.UNMATCHED
        audit.record("email.refused", object_type="inboundmessage", object_repr=parsed.sender,
                     changes={"invitation": invitation.pk})  # fmt: skip
        return (
            f"Not recorded: answers for {invitation.agency.name} are taken from its contacts' "
            "addresses only. Use the link in the poll's email."
        )
    if parsed.problem:
        link = form_link(invitation, message)
        return f"Not recorded: {parsed.problem} Or answer on the form: {link}"
    try:
        answer = sms_grammar.parse(parsed.text)
    except sms_grammar.ParseError as exc:
        return f"Not understood: {exc} Or answer on the form: {form_link(invitation, message)}"
    if answer.command:
        return HELP.replace("the code from the poll's text: <code> ", "a reply: ").replace(
            "<code> ", ""
        )
    return _apply(message, invitation, answer, now)


def _bounced(message: InboundMessage, parsed, now) -> None:
    """A delivery-status notification: the invitation failed; its agency's alternates are asked."""
    invitation = (
        Invitation.objects.select_related("poll", "agency")
        .filter(pk=parsed.bounce_of, channel=Invitation.Channel.EMAIL)
        .first()
    )
    message.invitation = invitation
    if invitation is None:
        message.outcome = InboundMessage.Outcome.UNMATCHED
        return
    message.outcome = InboundMessage.Outcome.REFUSED
    message.body = f"Bounce: {parsed.bounce_reason}"[:5000]
    Invitation.objects.filter(pk=invitation.pk).update(
        state=Invitation.State.FAILED, failure_reason=f"bounced: {parsed.bounce_reason}"[:500]
    )
    chasing.escalate_now(invitation=invitation, reason=parsed.bounce_reason, now=now)


def mailbox_fetch(*, limit: int = 500) -> dict:
    """Read the reply mailbox: each message is handled (once, whatever happens after) and then
    moved to the processed folder. A message that breaks the handler stays for the next run."""
    done = {"handled": 0, "replayed": 0, "failed": 0}
    if not settings.IMAP_HOST:
        return done
    with mailbox.Mailbox() as box:
        for uid in box.uids(limit):
            try:
                handled = email_received(box.fetch(uid))
            except Exception:
                logger.exception("reply mailbox: message %s could not be handled", uid)
                done["failed"] += 1
                continue
            box.done(uid)
            done["handled" if handled else "replayed"] += 1
    return done
