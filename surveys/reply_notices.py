"""What an answer's saving tells people by email: its author, what was recorded (with the link
to change it), and the poll's sender, a digest of the new answers at most every
REPLY_DIGEST_MINUTES; and the sender of an email answer, what became of it. Sent by Celery
(surveys.tasks) after the answers commit."""

import datetime
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .channels.base import PERMANENT, SENT, Unreachable
from .channels.email import EmailChannel
from .channels.links import one_more_link
from .models import InboundMessage, InvitationLink, Poll, ReplyVersion
from .replies import _readable

logger = logging.getLogger(__name__)
Confirmation = ReplyVersion.Confirmation


def confirmations_send(*, now=None, seconds: float = 50) -> dict:
    """Send the answers' confirmation emails that are due, a batch at a time, for up to
    `seconds` (well inside CONFIRMATION_LEASE_SECONDS). Each batch is claimed first, rows no
    other worker holds (FOR UPDATE SKIP LOCKED), so two workers never send one confirmation;
    one that a dead worker held goes once its claim lapses. Each is marked sent as it goes,
    while the claim is still this run's. A transient failure is tried again after the lease,
    at most CONFIRMATION_MAX_ATTEMPTS times; a permanent one, or one that cannot be written,
    is not. A mail server that cannot be reached ends the run and gives the rest back
    untried."""
    done = {"sent": 0, "failed": 0, "later": 0}
    clock = timezone.now if now is None else (lambda: now)
    started = clock()
    while (clock() - started).total_seconds() < seconds:
        claim = clock()
        claimed = _claim(claim)
        if not claimed or not _send(claimed, claim, done) or now is not None:
            break  # nothing more, the server is down, or a test's frozen clock (one pass)
    return done


def _claim(now) -> list[ReplyVersion]:
    lease = datetime.timedelta(seconds=settings.CONFIRMATION_LEASE_SECONDS)
    free = Q(confirmation_claimed_at__isnull=True) | Q(confirmation_claimed_at__lt=now - lease)
    with transaction.atomic():
        pks = list(
            ReplyVersion.objects.filter(free, confirmation=Confirmation.DUE)
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.CONFIRMATION_BATCH]
        )
        ReplyVersion.objects.filter(pk__in=pks).update(
            confirmation_claimed_at=now, confirmation_attempts=F("confirmation_attempts") + 1
        )
    return list(
        ReplyVersion.objects.filter(pk__in=pks)
        .select_related(
            "reply__poll__created_by", "reply__poll__requesting_agency", "reply__agency"
        )
        .order_by("pk")
    )


def _send(versions: list[ReplyVersion], claim, done: dict) -> bool:
    """Send a claimed batch; False when the mail server could not be reached (the versions
    not tried are given back, their attempt not counted)."""
    urls = _change_urls(versions)
    mine = ReplyVersion.objects.filter(confirmation_claimed_at=claim)
    untried = {version.pk for version in versions}
    try:
        with EmailChannel().sender() as send:
            for version in versions:
                try:
                    message = _confirmation(version, urls[version.pk])
                except Exception:  # one that cannot be written holds up no other
                    logger.exception("confirmation of version %s cannot be written", version.pk)
                    result = None
                else:
                    result = send(message)
                untried.discard(version.pk)
                if result is not None and result.outcome == SENT:
                    mine.filter(pk=version.pk).update(confirmation=Confirmation.SENT,
                                                      confirmation_claimed_at=None)  # fmt: skip
                    done["sent"] += 1
                elif (
                    result is None
                    or result.outcome == PERMANENT
                    or (version.confirmation_attempts >= settings.CONFIRMATION_MAX_ATTEMPTS)
                ):
                    if result is not None:
                        logger.warning("confirmation of version %s not sent: %s", version.pk,
                                       result.reason)  # fmt: skip
                    mine.filter(pk=version.pk).update(confirmation=Confirmation.FAILED,
                                                      confirmation_claimed_at=None)  # fmt: skip
                    done["failed"] += 1
                else:
                    done["later"] += 1  # tried again once the claim lapses
    except Unreachable as exc:
        logger.warning("confirmations: the mail server cannot be reached (%s)", exc)
        mine.filter(pk__in=untried).update(
            confirmation_claimed_at=None, confirmation_attempts=F("confirmation_attempts") - 1
        )
        return False
    return True


def _change_urls(versions: list[ReplyVersion]) -> dict[int, str]:
    """Where each author changes the answer: a signed-in commander on the agency's page; an
    answer by the emailed link, by a fresh link to the same form (only its hash is kept, like
    every link's, so the one they used cannot be written into the email)."""
    urls, links = {}, []
    for version in versions:
        if version.channel == ReplyVersion.Channel.LINK and version.invitation_id:
            link, urls[version.pk] = one_more_link(version.invitation_id, nbytes=32)
            links.append(link)
        else:
            urls[version.pk] = settings.SITE_URL + reverse(
                "surveys:my-agency-reply", args=[version.poll_id]
            )
    InvitationLink.objects.bulk_create(links)
    return urls


def reply_send_confirmation(*, version_id: int, url: str) -> bool:
    """Tell whoever saved a version what was recorded (text email, with the link to change it)."""
    version = ReplyVersion.objects.select_related("reply__poll__created_by", "reply__agency").get(
        pk=version_id
    )
    mailers.default.send_messages([_confirmation(version, url)])
    return True


def _confirmation(version: ReplyVersion, url: str) -> EmailMultiAlternatives:
    reply = version.reply
    context = {
        "version": version,
        "reply": reply,
        "poll": reply.poll,
        "agency": reply.agency,
        "answer": version.data,
        "readable": _readable(version.data),
        "url": url,
        "deadline": timezone.localtime(reply.poll.deadline),
    }
    subject = f"Answer recorded: {reply.poll.title} ({reply.agency.name})"
    return EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string("surveys/email/reply_confirmation.txt", context),
        to=[version.author_email],
    )


def claim_digests(now) -> list[tuple[int, str, str]]:
    """Open polls whose sender asked for a digest, with answers since the last one, at most
    one every REPLY_DIGEST_MINUTES. Claimed by a conditional UPDATE: each window is sent once."""
    gap = timezone.timedelta(minutes=settings.REPLY_DIGEST_MINUTES)
    due = Poll.objects.filter(state=Poll.State.OPEN, reply_digest=True).filter(
        Q(digest_sent_at__isnull=True) | Q(digest_sent_at__lte=now - gap)
    )
    claimed = []
    for poll in due:
        since = poll.digest_sent_at or poll.sent_at
        if not poll.reply_versions.filter(created_at__gt=since, created_at__lte=now).exists():
            continue
        if Poll.objects.filter(pk=poll.pk, digest_sent_at=poll.digest_sent_at).update(
            digest_sent_at=now
        ):
            claimed.append((poll.pk, since.isoformat(), now.isoformat()))
    return claimed


def reply_send_digest(*, poll_id: int, since: str, until: str) -> int:
    """One email to the poll's sender listing the answers saved in (since, until]."""
    poll = Poll.objects.select_related("created_by").get(pk=poll_id)
    versions = list(
        poll.reply_versions.filter(created_at__gt=since, created_at__lte=until)
        .select_related("reply__agency")
        .order_by("created_at")
    )
    if not versions:
        return 0
    body = render_to_string(
        "surveys/email/reply_digest.txt",
        {
            "poll": poll,
            "versions": versions,
            "answered": poll.replies.count(),
            "asked": poll.invitations.values("agency").distinct().count(),
            "url": settings.SITE_URL + reverse("surveys:poll-detail", args=[poll.pk]),
        },
    )
    subject = f"{len(versions)} new answer(s): {poll.title}"
    mailers.default.send_messages(
        [
            EmailMultiAlternatives(
                subject=" ".join(subject.split()), body=body, to=[poll.created_by.email]
            )
        ]
    )
    return len(versions)


def email_response_send(*, message_id: int) -> bool:
    """Tell the sender of an email what became of it (a reply in the same thread)."""
    message = InboundMessage.objects.get(pk=message_id)
    if not message.response or not message.sender:
        return False
    reply = EmailMultiAlternatives(
        subject="Your answer: " + ("recorded" if message.outcome == "applied" else "not recorded"),
        body=message.response,
        to=[message.sender],
        headers={"In-Reply-To": message.message_id, "References": message.message_id},
    )
    mailers.default.send_messages([reply])
    return True
