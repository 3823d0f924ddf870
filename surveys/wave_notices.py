"""When the waves covered the need (issue 20): agencies asked by the waves that said yes beyond
the need are told they are on standby (not released, not deployed), the silent that the need is
met and they need not answer; each once."""

import logging

from django.core.mail import EmailMultiAlternatives, mailers
from django.db.models import F, Min, Sum
from django.utils import timezone

from . import channels
from .models import Poll, Reply, WaveAgency
from .waves import counted_lines

logger = logging.getLogger(__name__)


def standby_and_silent(poll: Poll) -> tuple[list[int], list[int]]:
    """Agencies asked by the waves that said yes beyond the need (soonest first fill the need),
    and those still silent. One query each."""
    need = poll.officers_needed or 0
    said_yes = (
        counted_lines(poll)
        .filter(reply__agency__in=WaveAgency.objects.filter(poll=poll).values("agency"))
        .values("reply__agency_id")
        .annotate(officers=Sum("officers"), first=Min("arrival_minutes"))
        .order_by(F("first").asc(nulls_last=True), "reply__agency_id")
        .values_list("reply__agency_id", "officers")
    )
    standby, total = [], 0
    for agency_id, officers in said_yes:  # the soonest fill the need; the rest stand by
        if total >= need:
            standby.append(agency_id)
        total += officers
    silent = list(
        WaveAgency.objects.filter(poll=poll)
        .exclude(agency__in=Reply.objects.filter(poll=poll).values("agency"))
        .values_list("agency_id", flat=True)
    )
    return standby, silent


NOTICES = {
    WaveAgency.Told.STANDBY: (
        "STANDBY: {title}",
        "The need for {need} officers at {destination} is covered by agencies that can arrive "
        "sooner. {agency} is ON STANDBY: not released, not deployed. Keep your answer current; "
        "you will be told if you are needed.",
    ),
    WaveAgency.Told.NEED_MET: (
        "Need met: {title}",
        "The need for {need} officers at {destination} is covered. {agency} need not answer "
        "this poll; thank you.",
    ),
}


def notices_send(*, poll_id: int, now=None) -> int:
    """Tell each agency asked by the waves what the covered need means for it, once: standby
    (said yes beyond the need) or need met (silent). Each is claimed before it is sent, by
    every channel the agency was asked by (not by text to a number that texted STOP); one that
    no channel took is given back, and the task raises so that Celery retries it later."""
    now = now or timezone.now()
    poll = Poll.objects.get(pk=poll_id)
    standby, silent = standby_and_silent(poll)
    invitations: dict[int, list] = {}
    for invitation in poll.invitations.filter(agency__in=[*standby, *silent]).exclude(
        state="failed"
    ).select_related("contact"):  # fmt: skip
        invitations.setdefault(invitation.agency_id, []).append(invitation)
    sent, missed = 0, 0
    for told, agencies in ((WaveAgency.Told.STANDBY, standby), (WaveAgency.Told.NEED_MET, silent)):
        subject, text = NOTICES[told]
        for row in WaveAgency.objects.filter(
            poll=poll, agency__in=agencies, told=""
        ).select_related("agency"):
            if not WaveAgency.objects.filter(pk=row.pk, told="").update(told=told, told_at=now):
                continue
            words = {"title": poll.title, "need": poll.officers_needed,
                     "destination": poll.destination_name, "agency": row.agency.name}  # fmt: skip
            if _notify(invitations.get(row.agency_id, []), subject.format(**words),
                       text.format(**words)):  # fmt: skip
                sent += 1
            else:
                WaveAgency.objects.filter(pk=row.pk).update(told="", told_at=None)
                missed += 1
    if missed:
        raise OSError(f"{missed} wave notice(s) not sent; retrying")
    return sent


def _notify(invitations: list, subject: str, body: str) -> bool:
    """By email and text, as the agency was asked; True when any channel took it."""
    took = False
    for invitation in invitations:
        try:
            if invitation.channel == "email":
                mailers.default.send_messages(
                    [EmailMultiAlternatives(subject=subject, body=body, to=[invitation.email])]
                )
                took = True
            elif not invitation.contact.sms_stopped_at:
                with channels.SMS.sender() as send:
                    result = send(channels.providers.Text(to=invitation.mobile, body=body))
                took = took or result.outcome == channels.SENT
        except Exception:  # one channel failing costs only itself
            logger.warning("a wave notice was not sent by %s", invitation.channel, exc_info=True)
    return took
