"""What an answer's saving tells people by email: its author, what was recorded (with the link
to change it), and the poll's sender, a digest of the new answers at most every
REPLY_DIGEST_MINUTES. Sent by Celery (surveys.tasks) after the answers commit."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Poll, ReplyVersion
from .replies import _readable


def reply_send_confirmation(*, version_id: int, url: str) -> bool:
    """Tell whoever saved a version what was recorded (text email, with the link to change it)."""
    version = ReplyVersion.objects.select_related("reply__poll__created_by", "reply__agency").get(
        pk=version_id
    )
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
    mailers.default.send_messages(
        [
            EmailMultiAlternatives(
                subject=" ".join(subject.split()),
                body=render_to_string("surveys/email/reply_confirmation.txt", context),
                to=[version.author_email],
            )
        ]
    )
    return True


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
