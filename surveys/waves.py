"""Asking in waves until the need is covered (issue 20). A poll with rings (by default upper
bounds of travel minutes from the destination, e.g. 45, 90, 180; or lists of regions, or of
hand-picked agencies; then the rest of the targeted agencies) asks the first ring when it is
sent. After each wave's wait, the rule looks at the figures:

    covered    officers who said yes (with conditions too, if the poll counts them) of the
               needed team type, able to arrive within the need's window;
    rate       what the agencies that answered offered in time, per officer they have on record
               (their targeted teams' members): the yes-rate so far, by capacity;
    projected  covered + the silent agencies' officers on record x rate (no answer yet: nothing
               is projected from the silent).

Covered >= the need: the waves stop, agencies that said yes beyond the need are told they are
on standby, the silent that the need is met. Else, projected < the need: the next ring is
invited. Else the rule holds and looks again every minute (the silent may answer, or the
deadline pass). Every wave is recorded with the figures that sent it. The coordinator can
pause, send the next ring now, skip a ring, or stop. Deciding and inviting are one transaction
under the poll's row lock, and an agency is asked by a wave at most once (WaveAgency is unique
per poll and agency), so a worker killed between them leaves nothing half done.
"""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from agencies.models import Agency, Region
from readiness import audit

from . import channels, delivery, geo, jobs, selectors
from .models import Poll, Reply, ReplyLine, Wave, WaveAgency

DEFAULT_RINGS = (45, 90, 180)
NOTICES_TASK = "surveys.tasks.send_wave_notices"
YES, CONDITIONAL = Reply.Decision.AVAILABLE, Reply.Decision.CONDITIONAL


class NotPossible(Exception):
    """The control cannot act on this poll now; the message says why."""


def officers_on_record(agency) -> int:
    """The agency's officers on its targeted teams (recipients() attaches `targeted_teams`)."""
    return sum(t.members for t in agency.targeted_teams)


def ring_of(agency, by: str, rings: list) -> int:
    """The 1-based ring of an agency (len(rings) + 1: the rest): by travel, the first bound it
    is within; by region or agency, the first ring that lists its region or itself."""
    if by == Poll.WaveBy.REGION:
        key = agency.region_id
    elif by == Poll.WaveBy.AGENCY:
        key = agency.pk
    else:
        travel = travel_of(agency)
        return next((n for n, bound in enumerate(rings, 1) if travel <= bound), len(rings) + 1)
    return next((n for n, ids in enumerate(rings, 1) if key in ids), len(rings) + 1)


def wait_of(poll: Poll, number: int) -> int:
    """The wait after ring `number` (1-based): its own where the poll gives one per ring."""
    waits = list(poll.wave_waits)
    return waits[number - 1] if number <= len(waits) else poll.wave_wait_minutes


def travel_of(agency) -> int:
    return geo.travel_minutes(geo.km(agency.distance_km))  # as its invitation will store it


def ring_names(by: str, rings: list) -> list[str]:
    """Each ring as people read it, then "the rest of the targeted agencies"."""
    if by == Poll.WaveBy.TRAVEL:
        names = [f"within {bound} min of travel" for bound in rings]
    else:
        model = Region if by == Poll.WaveBy.REGION else Agency
        known = dict(model.objects.filter(pk__in={i for ids in rings for i in ids}).values_list(
            "pk", "name"))  # fmt: skip
        names = [", ".join(known.get(i, f"#{i}") for i in ids)[:300] for ids in rings]
    return [*names, "the rest of the targeted agencies"]


def plan(recipients: list, by: str, rings: list) -> list[dict]:
    """The rings as the compose preview shows them: agencies reachable and officers on record."""
    rows = [{"number": n, "name": name, "agencies": 0, "officers": 0}
            for n, name in enumerate(ring_names(by, rings), start=1)]  # fmt: skip
    for agency in recipients:
        if agency.primary_contacts:
            row = rows[ring_of(agency, by, rings) - 1]
            row["agencies"] += 1
            row["officers"] += officers_on_record(agency)
    return rows


# The rule ------------------------------------------------------------------------------------


@dataclass
class Figures:
    need: int
    window_minutes: int | None
    covered: int
    asked: int  # agencies asked by the waves so far
    replied: int
    offered: int  # officers the agencies that replied offered in time
    replied_on_record: int
    silent: int
    silent_on_record: int
    projected: int

    @property
    def rate(self) -> float | None:
        return self.offered / self.replied_on_record if self.replied_on_record else None

    def as_json(self) -> dict:
        rate = self.rate
        return {**asdict(self), "rate": round(rate, 3) if rate is not None else None}


def counted_lines(poll: Poll):
    """Team lines that count toward the need: yes (with conditions too, if the poll says so),
    of the needed team type, arriving within the need's window."""
    window = poll.need_window_minutes()
    decisions = [YES, CONDITIONAL] if poll.wave_count_conditional else [YES]
    # The lines' own copies of the decision and team type, as the dashboard's need reads them.
    lines = ReplyLine.objects.filter(poll=poll, officers__gt=0, decision__in=decisions)
    if window is not None:
        lines = lines.filter(arrival_minutes__lte=window)
    if poll.needed_team_type_id:
        lines = lines.filter(team_type_id=poll.needed_team_type_id)
    return lines


def figures(poll: Poll) -> Figures:
    """The rule's figures in two aggregate queries, whatever the number of agencies."""
    # The rate compares like with like: what the agencies the waves asked offered, per officer
    # they have on record (agencies added by hand count toward the need, not the rate).
    by_waves = Q(reply__agency__in=WaveAgency.objects.filter(poll=poll).values("agency"))
    sums = counted_lines(poll).aggregate(
        covered=Sum("officers", default=0), offered=Sum("officers", filter=by_waves, default=0)
    )
    covered, offered = sums["covered"], sums["offered"]
    replied = Exists(Reply.objects.filter(poll=poll, agency=OuterRef("agency")))
    asked = WaveAgency.objects.filter(poll=poll).aggregate(
        asked=Count("pk"),
        replied=Count("pk", filter=Q(replied)),
        replied_on_record=Sum("officers_on_record", filter=Q(replied), default=0),
        silent_on_record=Sum("officers_on_record", filter=~Q(replied), default=0),
    )
    result = Figures(
        need=poll.officers_needed or 0, window_minutes=poll.need_window_minutes(),
        covered=covered, asked=asked["asked"], replied=asked["replied"], offered=offered,
        replied_on_record=asked["replied_on_record"], silent=asked["asked"] - asked["replied"],
        silent_on_record=asked["silent_on_record"], projected=covered,
    )  # fmt: skip
    result.projected = project(covered, offered, result.replied_on_record, result.silent_on_record)
    return result


def project(covered: int, offered: int, replied_capacity: int, silent_capacity: int) -> int:
    """The rule's projection, for agencies (capacity: officers on record) and for an agency's
    members (capacity: one each): what is covered, plus the silent's capacity times what those
    who answered offered per unit of theirs. Nothing is projected before anyone answers."""
    if not replied_capacity:
        return covered
    return covered + int(silent_capacity * offered / replied_capacity)


def waves_advance(*, now=None) -> dict:
    """The beat (every minute): each running poll's rule, once."""
    now = now or timezone.now()
    done = {"covered": 0, "sent": 0, "holding": 0}
    for poll in Poll.objects.filter(state=Poll.State.OPEN, waves_state=Poll.Waves.RUNNING):
        outcome = advance(poll, now=now)
        if outcome in done:
            done[outcome] += 1
    return done


def advance(poll: Poll, *, now=None) -> str:
    """Apply the rule to one poll: "covered", "sent", "holding", "waiting" or "done". The whole
    decision holds the poll's row lock: a second beat, or the coordinator's control, waits and
    then decides again on what the first one did (the wave it sent, a pause, a stop)."""
    now = now or timezone.now()
    with transaction.atomic():
        poll = Poll.objects.select_for_update().get(pk=poll.pk)
        if poll.state != Poll.State.OPEN or poll.waves_state != Poll.Waves.RUNNING:
            return "done"
        found = figures(poll)
        if found.need and found.covered >= found.need:
            return "covered" if _cover(poll, found, now) else "done"
        last = poll.waves.filter(state=Wave.State.SENT).order_by("-number").first()
        if last and last.decided_at + timedelta(minutes=last.wait_minutes) > now:
            return "waiting"
        if found.projected >= found.need > 0:
            return "holding"
        return "sent" if wave_send(poll=poll, found=found, now=now) else "done"


# Sending a ring --------------------------------------------------------------------------------


def waves_start(*, poll: Poll, recipients: list, now) -> list:
    """At sending: the poll's waves, recorded pending; returns the first ring's recipients
    (the first ring with an agency in it; empty rings before it are skipped)."""
    rings, travel = list(poll.wave_rings), poll.wave_by == Poll.WaveBy.TRAVEL
    Wave.objects.bulk_create(
        Wave(poll=poll, number=n, name=name, wait_minutes=wait_of(poll, n),
             max_travel_minutes=rings[n - 1] if travel and n <= len(rings) else None)
        for n, name in enumerate(ring_names(poll.wave_by, rings), start=1)
    )  # fmt: skip
    poll.waves_state = Poll.Waves.RUNNING
    found = {"need": poll.officers_needed, "first": True}
    for wave in poll.waves.order_by("number"):
        chosen = _ring(poll, wave, recipients, asked=set())
        if chosen:
            _record(poll, wave, chosen, found, now, user=None)
            return chosen
        _skip(wave, now, {"why": "no agency with a contact in this ring"})
    return []


def _ring(poll: Poll, wave: Wave, recipients: list, asked: set) -> list:
    rings = list(poll.wave_rings)
    return [
        a for a in recipients
        if a.primary_contacts and a.pk not in asked
        and ring_of(a, poll.wave_by, rings) == wave.number
    ]  # fmt: skip


def _record(poll: Poll, wave: Wave, agencies: list, reason: dict, now, user) -> None:
    WaveAgency.objects.bulk_create(
        (WaveAgency(poll=poll, wave=wave, agency=a, officers_on_record=officers_on_record(a))
         for a in agencies),
        batch_size=1000,
    )  # fmt: skip
    wave.state, wave.decided_at, wave.decided_by, wave.reason = Wave.State.SENT, now, user, reason
    wave.agencies = len(agencies)
    wave.officers_on_record = sum(officers_on_record(a) for a in agencies)
    wave.save()


def _skip(wave: Wave, now, reason: dict, user=None) -> None:
    Wave.objects.filter(pk=wave.pk).update(
        state=Wave.State.SKIPPED, decided_at=now, reason=reason, decided_by=user
    )


@transaction.atomic
def wave_send(*, poll: Poll, found: Figures | None = None, now=None, request=None) -> Wave | None:
    """Invite the next pending ring (skipping empty ones), with the figures that sent it; None
    when no ring is left. Under the poll's row lock: a second decision waits, then finds the
    wave sent."""
    now = now or timezone.now()
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if poll.state != Poll.State.OPEN:
        return None
    found = found or figures(poll)
    user = getattr(request, "user", None)
    reason = {**found.as_json(), "by": "coordinator" if user else "rule"}
    recipients = None
    for wave in poll.waves.filter(state=Wave.State.PENDING).order_by("number"):
        if recipients is None:
            recipients = list(selectors.poll_recipients(poll=poll))
            asked = set(WaveAgency.objects.filter(poll=poll).values_list("agency_id", flat=True))
            asked |= set(poll.invitations.values_list("agency_id", flat=True))
        chosen = _ring(poll, wave, recipients, asked)
        if not chosen:
            _skip(wave, now, {**reason, "why": "no agency with a contact in this ring"}, user)
            continue
        _record(poll, wave, chosen, reason, now, user)
        invitations = [
            invitation for agency in chosen
            for invitation in channels.invitations_for(
                poll, agency, agency.primary_contacts[0], now=now,
                distance_km=geo.km(agency.distance_km), travel_minutes=travel_of(agency),
            )
        ]  # fmt: skip
        channels.save_invitations(invitations)
        audit.record("poll.wave", request=request, obj=poll,
                     changes={"wave": wave.number, "agencies": len(chosen), **reason})  # fmt: skip
        delivery.queue_new(invitations, now)
        return wave
    return None


# When the need is covered -----------------------------------------------------------------------


def _cover(poll: Poll, found: Figures, now) -> bool:
    with transaction.atomic():
        if not Poll.objects.filter(
            pk=poll.pk, waves_state__in=[Poll.Waves.RUNNING, Poll.Waves.PAUSED]
        ).update(waves_state=Poll.Waves.COVERED, waves_covered_at=now):
            return False
        for wave in poll.waves.filter(state=Wave.State.PENDING):
            _skip(wave, now, {**found.as_json(), "why": "the need was covered"})
        audit.record("poll.waves_covered", obj=poll, changes=found.as_json())
        jobs.after_commit(NOTICES_TASK, poll.pk)
    return True


# The coordinator's controls ----------------------------------------------------------------------


def _lock(poll: Poll, *states) -> Poll:
    poll = Poll.objects.select_for_update().get(pk=poll.pk)
    if poll.state != Poll.State.OPEN or poll.waves_state not in states:
        raise NotPossible(
            "This poll is not asking in waves now."
            if poll.waves_state in ("", Poll.Waves.STOPPED, Poll.Waves.COVERED)
            or poll.state != Poll.State.OPEN
            else f"The waves are {poll.get_waves_state_display().lower()}."
        )
    return poll


@transaction.atomic
def waves_control(*, poll: Poll, action: str, request) -> str:
    """pause, resume, next (the next ring now), skip (the next ring) or stop; audited. Returns
    what was done, to tell the coordinator."""
    now = timezone.now()
    allowed = {"pause": [Poll.Waves.RUNNING], "resume": [Poll.Waves.PAUSED]}.get(
        action, [Poll.Waves.RUNNING, Poll.Waves.PAUSED]
    )
    poll = _lock(poll, *allowed)
    found = figures(poll)
    pending = poll.waves.filter(state=Wave.State.PENDING).order_by("number")
    if action in ("pause", "resume", "stop"):
        poll.waves_state = {"pause": Poll.Waves.PAUSED, "resume": Poll.Waves.RUNNING,
                            "stop": Poll.Waves.STOPPED}[action]  # fmt: skip
        poll.save(update_fields=["waves_state", "updated_at"])
        if action == "stop":
            for wave in pending:
                _skip(wave, now, {**found.as_json(), "why": "stopped"}, request.user)
        done = {
            "pause": "Waves paused: no ring is asked until you resume.",
            "resume": "Waves resumed.",
            "stop": "Waves stopped: nobody else is asked.",
        }[action]
    elif action == "skip":
        wave = pending.first()
        if wave is None:
            raise NotPossible("No ring is left to skip.")
        _skip(wave, now, {**found.as_json(), "why": "skipped"}, request.user)
        done = f"Ring {wave.number} ({wave.label}) skipped."
    elif action == "next":
        wave = wave_send(poll=poll, found=found, now=now, request=request)
        if wave is None:
            raise NotPossible("No ring is left to ask.")
        done = f"Ring {wave.number} ({wave.label}) asked: {wave.agencies} agencies."
    else:
        raise NotPossible(f"Unknown action {action!r}.")
    audit.record(f"poll.waves_{action}", request=request, obj=poll, changes=found.as_json())
    return done
