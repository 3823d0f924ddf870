"""Readiness: what the replies to a poll add up to, and what the registry could send.

Every figure is computed by the database (GROUP BY, conditional aggregates, window functions);
Python only shapes the few rows that come back. Replies hold each agency's current answer
(earlier versions live in ReplyVersion), so only current answers ever count.

"Within" is the control on the dashboard: figures count only officers able to arrive within
that many minutes of the call (None: any time). It defaults to the need's deadline.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from agencies.models import Agency, Region, SpecialTeam, TeamType
from surveys import selectors
from surveys.models import MAX_MINUTES, Invitation, MemberAsk, Poll, Reply, ReplyLine

STEP_MINUTES = 15
CURVE_STEPS = 32  # 15-minute steps to 8 hours; one more step holds everything later
CURVE_END = STEP_MINUTES * CURVE_STEPS
AVAILABLE, CONDITIONAL, UNAVAILABLE = Reply.Decision.values
PROGRESS_STEPS = (5, 15, 30, 60, 120, 240, 360, 720, 1440)  # minutes, the first that fits
PROGRESS_MAX_POINTS = 48


# The within-N control -------------------------------------------------------------------------

WITHIN_CHOICES = (30, 60, 90, 120, 180, 240, 360, 480, 720, 1440, 2880, 4320)


def need_deadline_minutes(poll: Poll) -> int | None:
    """The need's deadline as minutes after the poll was sent (the call), if it has one."""
    return poll.need_window_minutes()


def parse_within(raw: str, poll: Poll) -> tuple[int | None, str]:
    """The 'within N' control: minutes, or None for any time; and an error to show, if any.
    Without a choice it is the need's deadline (what could be there when it is needed)."""
    raw = raw.strip()
    default = need_deadline_minutes(poll)
    if raw == "":
        return default, ""
    if raw == "all":
        return None, ""
    try:
        minutes = int(raw)
    except ValueError:
        minutes = -1
    if not 0 <= minutes <= MAX_MINUTES:
        label = duration_label(default)
        error = (
            f"“{raw[:20]}” is not a number of minutes from 0 to {MAX_MINUTES}; "
            f"showing {label} instead."
        )
        return default, error
    return minutes, ""


def duration_label(minutes: int | None) -> str:
    """'45 min', '2 h', '4 h 30 min'; None is 'any time'."""
    if minutes is None:
        return "any time"
    hours, rest = divmod(int(minutes), 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


# The poll's figures ---------------------------------------------------------------------------


@dataclass
class CurvePoint:
    minutes: int | None  # None: later than 8 hours
    available: int
    everyone: int  # available and available with conditions
    qualified_available: int
    qualified_everyone: int
    need_available: int  # officers of the needed team type (all types when none is named)
    need_everyone: int
    # Officers backed by members' answers, by the members' own arrival (their departure plus
    # travel from where they start), where commanders submitted a roll-up of their members.
    members: int = 0

    @property
    def label(self) -> str:
        return "later" if self.minutes is None else f"by {duration_label(self.minutes)}"


@dataclass
class Need:
    officers: int
    team_type: str
    deadline_minutes: int | None  # after the call, from needed_by; None when not given
    at_minutes: int | None  # where it is judged: the within control (None: any time)
    met_available_at: int | None  # minutes (CURVE_END + 1 means later than 8 h)
    met_everyone_at: int | None
    available: int  # needed-type officers there by at_minutes
    everyone: int

    @property
    def shortfall_available(self) -> int:
        return max(self.officers - self.available, 0)

    @property
    def shortfall_everyone(self) -> int:
        return max(self.officers - self.everyone, 0)


@dataclass
class Summary:
    poll: Poll
    within: int | None
    asked: int
    replied: int
    available: int  # agencies available without conditions, with officers there in time
    conditional: int
    unavailable: int
    late: int  # agencies that said yes but cannot get anyone there within the window
    officers_available: int
    officers_conditional: int
    qualified_available: int
    qualified_conditional: int
    curve: list[CurvePoint]
    need: Need | None
    progress: list[dict]
    by_type: list[dict]
    by_region: list[dict]
    conditions: list[dict]
    conditions_replies: int
    conditions_texts: list[dict]
    officers_backed: int = 0  # of the officers counted, those backed by members' own answers
    silent_invitations: int = 0  # invitations (alternates' too) of agencies not answered
    stamp: str = ""

    @property
    def reply_rate(self) -> float:
        return self.replied / self.asked if self.asked else 0.0

    @property
    def officers(self) -> int:
        return self.officers_available + self.officers_conditional

    def as_json(self) -> dict:
        """The figures as plain JSON (the summary endpoint, and the API after it)."""
        need = self.need
        return {
            "poll": {
                "id": self.poll.pk,
                "title": self.poll.title,
                "state": self.poll.state,
                "purpose": self.poll.purpose,
            },
            "within_minutes": self.within,
            "headline": {
                "agencies_asked": self.asked,
                "agencies_replied": self.replied,
                "reply_rate": round(self.reply_rate, 4),
                "agencies_available": self.available,
                "agencies_conditional": self.conditional,
                "agencies_unavailable": self.unavailable,
                "agencies_too_late": self.late,
                "officers_available": self.officers_available,
                "officers_conditional": self.officers_conditional,
                "officers_backed_by_members": self.officers_backed,
                "officers_qualified_available": self.qualified_available,
                "officers_qualified_conditional": self.qualified_conditional,
            },
            "arrival_curve": [
                {
                    "by_minutes": p.minutes,
                    "available": p.available,
                    "with_conditions": p.everyone,
                    "qualified_available": p.qualified_available,
                    "qualified_with_conditions": p.qualified_everyone,
                    "backed_by_members": p.members,
                }
                for p in self.curve
            ],
            "need": None
            if need is None
            else {
                "officers": need.officers,
                "team_type": need.team_type or None,
                "deadline_minutes": need.deadline_minutes,
                "judged_at_minutes": need.at_minutes,
                "met_available_at_minutes": need.met_available_at,
                "met_with_conditions_at_minutes": need.met_everyone_at,
                "available": need.available,
                "with_conditions": need.everyone,
                "shortfall_available": need.shortfall_available,
                "shortfall_with_conditions": need.shortfall_everyone,
            },
            "reply_progress": self.progress,
            "by_team_type": self.by_type,
            "by_region": self.by_region,
            "conditions": self.conditions,
            "stamp": self.stamp,
        }


def _lines(poll: Poll, within: int | None):
    """Team lines that put officers at the destination (within the window). The figures over
    them read the line's own copies of the decision and the team's type and level (see
    ReplyLine): one pass over one table, no join."""
    lines = ReplyLine.objects.filter(poll=poll, officers__gt=0).exclude(decision=UNAVAILABLE)
    if within is not None:
        lines = lines.filter(arrival_minutes__lte=within)
    return lines


def _by_decision(column: str) -> dict:
    return {
        "available": Sum(column, filter=Q(decision=AVAILABLE), default=0),
        "conditional": Sum(column, filter=Q(decision=CONDITIONAL), default=0),
    }


SUMMARY_CACHE_SECONDS = 600
# Part of the cache key: a deploy that changes what a Summary holds never reads an old one.
SUMMARY_VERSION = 2


def cached_summary(
    *, poll: Poll, within: int | None = None, now: datetime | None = None, stamp: str = ""
) -> Summary:
    """poll_summary, computed once per (poll, stamp, window) and kept in the cache (Redis in
    production, shared by every web process): N officials watching one poll cost one
    computation per change, not N. The stamp changes with everything the figures show (within
    the few seconds poll_activity keeps its counts), so an old summary simply stops being asked
    for."""
    stamp = stamp or poll_stamp(poll=poll, now=now)
    window = "all" if within is None else within
    key = f"dashboard:summary:{SUMMARY_VERSION}:{poll.pk}:{stamp}:{window}"
    summary = cache.get(key)
    if summary is None:
        summary = poll_summary(poll=poll, within=within, now=now, stamp=stamp)
        cache.set(key, summary, SUMMARY_CACHE_SECONDS)
    summary.poll = poll  # the caller's instance (the cached one is a copy from another request)
    return summary


def poll_summary(
    *, poll: Poll, within: int | None = None, now: datetime | None = None, stamp: str = ""
) -> Summary:
    """Every figure of a poll's dashboard, in a fixed number of queries. `stamp`: the poll's
    poll_stamp when the caller already has it."""
    asked = Invitation.objects.filter(poll=poll).values("agency_id").distinct().count()
    # Apart from `asked`: in a WHERE, the planner anti-joins; in a FILTER it probes per row.
    silent = Invitation.objects.filter(poll=poll).exclude(Exists(_answered(poll))).count()
    in_time = Q() if within is None else Q(earliest_arrival_minutes__lte=within)
    said_yes = Q(decision__in=[AVAILABLE, CONDITIONAL])
    counts = {
        "replied": Count("pk"),
        "available": Count("pk", filter=Q(decision=AVAILABLE) & in_time),
        "conditional": Count("pk", filter=Q(decision=CONDITIONAL) & in_time),
        "unavailable": Count("pk", filter=Q(decision=UNAVAILABLE)),
    }
    if within is not None:
        counts["late"] = Count("pk", filter=said_yes & ~in_time)
    replies = {"late": 0, **Reply.objects.filter(poll=poll).aggregate(**counts)}
    lines = _lines(poll, within)
    needed = Q(team_type_id=poll.needed_team_type_id) if poll.needed_team_type_id else Q()
    officers = lines.aggregate(
        **{f"officers_{k}": v for k, v in _by_decision("officers").items()},
        **{f"qualified_{k}": v for k, v in _by_decision("officers_qualified").items()},
        officers_backed=Sum("officers_backed", default=0),
        need_available=Sum("officers", filter=Q(decision=AVAILABLE) & needed, default=0),
        need_everyone=Sum("officers", filter=needed, default=0),
    )
    need_there = (officers.pop("need_available"), officers.pop("need_everyone"))
    curve = arrival_curve(poll=poll)
    summary = Summary(
        poll=poll,
        within=within,
        asked=asked,
        silent_invitations=silent,
        **replies,
        **officers,
        curve=curve,
        need=_need(poll, curve, within, *need_there),
        progress=reply_progress(poll=poll, asked=asked, now=now),
        by_type=_by_type(lines),
        by_region=_by_region(poll, lines, in_time),
        **_conditions(poll),
    )
    summary.stamp = stamp or poll_stamp(poll=poll, now=now)
    return summary


def arrival_curve(*, poll: Poll) -> list[CurvePoint]:
    """Cumulative officers able to arrive by each 15-minute step to 8 hours, then later.

    One statement: lines are put in steps, summed per step, and accumulated by a window
    function, over the lines alone (each carries its answer's decision and its team's type).
    Steps without arrivals are filled in from the step before."""
    line = ReplyLine._meta.db_table
    step = (
        f"CASE WHEN l.arrival_minutes > {CURVE_END} THEN {CURVE_STEPS + 1} "
        f"ELSE (l.arrival_minutes + {STEP_MINUTES - 1}) / {STEP_MINUTES} END"
    )
    yes = f"l.decision = '{AVAILABLE}'"
    needed = "(%s IS NULL OR l.team_type_id = %s)"
    series = {
        "available": f"CASE WHEN {yes} THEN l.officers ELSE 0 END",
        "everyone": "l.officers",
        "qualified_available": f"CASE WHEN {yes} THEN COALESCE(l.officers_qualified, 0) ELSE 0 END",
        "qualified_everyone": "COALESCE(l.officers_qualified, 0)",
        "need_available": f"CASE WHEN {yes} AND {needed} THEN l.officers ELSE 0 END",
        "need_everyone": f"CASE WHEN {needed} THEN l.officers ELSE 0 END",
    }
    columns = ", ".join(f"SUM(SUM({expr})) OVER (ORDER BY {step})" for expr in series.values())
    sql = (
        f"SELECT {step}, {columns} FROM {line} l "  # noqa: S608 (no user text in the SQL)
        f"WHERE l.poll_id = %s AND l.officers > 0 AND l.decision IN (%s, %s) "
        f"GROUP BY {step} ORDER BY {step}"
    )
    type_id = poll.needed_team_type_id
    params = [type_id, type_id, type_id, type_id, poll.pk, AVAILABLE, CONDITIONAL]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    points, last = [], (0,) * len(series)
    for index in range(CURVE_STEPS + 2):
        last = tuple(int(v) for v in rows.get(index, last))
        minutes = None if index > CURVE_STEPS else index * STEP_MINUTES
        points.append(CurvePoint(minutes, *last))
    _add_member_arrivals(poll, points)
    return points


def _add_member_arrivals(poll: Poll, points: list[CurvePoint]) -> None:
    """Members backing their agency's submitted answer (while it still says yes and is backed by
    members), counted at their own arrival: one grouped query."""
    arrival = F("depart_minutes") + F("travel_minutes")
    steps = (
        MemberAsk.objects.filter(
            poll=poll,
            backing=True,
            depart_minutes__isnull=False,
            travel_minutes__isnull=False,
            # Only where the agency's current answer is a yes backed by members (one changed
            # since by link, text or API no longer is: its members' old flags do not count).
            agency__in=ReplyLine.objects.filter(
                poll=poll, officers_backed__gt=0, decision__in=[AVAILABLE, CONDITIONAL]
            ).values("reply__agency"),
        )
        .annotate(
            step=Case(
                When(
                    Q(depart_minutes__gt=CURVE_END - F("travel_minutes")),
                    then=Value(CURVE_STEPS + 1),
                ),
                default=(arrival + Value(STEP_MINUTES - 1)) / Value(STEP_MINUTES),
                output_field=IntegerField(),
            )
        )
        .order_by()
        .values_list("step")
        .annotate(n=Count("pk"))
    )
    counts = dict(steps)
    total = 0
    for index, point in enumerate(points):
        total += counts.get(index, 0)
        point.members = total


def _need(
    poll: Poll, curve: list[CurvePoint], within: int | None, available: int, everyone: int
) -> Need | None:
    """The need against the curve: when it is met, and what is there by the window's end
    (`available` and `everyone`: needed-type officers there by then, summed by the caller)."""
    if not poll.officers_needed:
        return None
    target = poll.officers_needed

    def met(series: str) -> int | None:
        for point in curve:  # 34 points of the curve, already summed by the database
            if getattr(point, f"need_{series}") >= target:
                return CURVE_END + 1 if point.minutes is None else point.minutes
        return None

    return Need(
        officers=target,
        team_type=poll.needed_team_type.name if poll.needed_team_type_id else "",
        deadline_minutes=need_deadline_minutes(poll),
        at_minutes=within,
        met_available_at=met("available"),
        met_everyone_at=met("everyone"),
        available=available,
        everyone=everyone,
    )


def _progress_step(span_minutes: float) -> int:
    for step in PROGRESS_STEPS:
        if span_minutes / step <= PROGRESS_MAX_POINTS:
            return step
    return PROGRESS_STEPS[-1]


def progress_moments(*, poll: Poll, now: datetime | None = None) -> list[datetime]:
    """The moments the reply-progress series is counted at: every step since sending, to the
    earlier of now and the deadline (or to closing). The one figure that moves with the clock,
    and only when a step turns (at most every 5 minutes), not every minute."""
    if not poll.sent_at:
        return []
    now = now or timezone.now()
    end = poll.closed_at or poll.cancelled_at or min(now, poll.deadline)
    end = max(end, poll.sent_at + timedelta(minutes=PROGRESS_STEPS[0]))
    step = _progress_step((end - poll.sent_at).total_seconds() / 60)
    count = int((end - poll.sent_at).total_seconds() // (step * 60)) + 1
    return [poll.sent_at + timedelta(minutes=step * i) for i in range(count + 1)]


def reply_progress(*, poll: Poll, asked: int, now: datetime | None = None) -> list[dict]:
    """Agencies answered by each moment since sending, as conditional counts of first answers
    (one row from the database), with the share of those asked."""
    moments = progress_moments(poll=poll, now=now)
    if not moments:
        return []
    step = int((moments[1] - moments[0]).total_seconds() // 60)
    counts = Reply.objects.filter(poll=poll).aggregate(
        **{f"p{i}": Count("pk", filter=Q(created_at__lte=at)) for i, at in enumerate(moments)}
    )
    return [
        {
            "minutes": step * i,
            "at": at.isoformat(),
            "answered": counts[f"p{i}"],
            "share": round(counts[f"p{i}"] / asked, 4) if asked else 0.0,
        }
        for i, at in enumerate(moments)
    ]


def _by_type(lines) -> list[dict]:
    rows = (
        lines.values("team_type_id", "team_type__name", "team_level")
        .annotate(
            teams=Count("pk"),
            agencies=Count("reply_id", distinct=True),  # an answer per agency
            **_by_decision("officers"),
            qualified=Sum("officers_qualified", default=0),
            earliest=Min("arrival_minutes"),
        )
        .order_by("team_type__sort_order", "team_type__name", "team_level")
    )
    return [
        {
            "team_type": row["team_type__name"],
            "level": row["team_level"],
            "teams": row["teams"],
            "agencies": row["agencies"],
            "available": row["available"],
            "conditional": row["conditional"],
            "qualified": row["qualified"],
            "earliest_minutes": row["earliest"],
        }
        for row in rows
    ]


def _by_region(poll: Poll, lines, in_time: Q) -> list[dict]:
    """Asked, answered and officers per region: three grouped queries joined on the region."""
    asked = (
        Invitation.objects.filter(poll=poll)
        .values("agency__region_id", "agency__region__name")
        .annotate(asked=Count("agency_id", distinct=True))
        .order_by("agency__region__name")
    )
    answers = {
        row["agency__region_id"]: row
        for row in Reply.objects.filter(poll=poll)
        .values("agency__region_id")
        .annotate(
            replied=Count("pk"),
            available=Count("pk", filter=Q(decision=AVAILABLE) & in_time),
            conditional=Count("pk", filter=Q(decision=CONDITIONAL) & in_time),
            unavailable=Count("pk", filter=Q(decision=UNAVAILABLE)),
        )
        .order_by()
    }
    officers = {
        # By the agency's region now, as the asked and answered counts beside it.
        row["reply__agency__region_id"]: row
        for row in lines.values("reply__agency__region_id")
        .annotate(**_by_decision("officers"))
        .order_by()
    }
    empty = {"replied": 0, "available": 0, "conditional": 0, "unavailable": 0}
    return [
        {
            "region": row["agency__region__name"],
            "asked": row["asked"],
            **{k: answers.get(row["agency__region_id"], empty)[k] for k in empty},
            "officers_available": officers.get(row["agency__region_id"], {}).get("available", 0),
            "officers_conditional": officers.get(row["agency__region_id"], {}).get(
                "conditional", 0
            ),
        }
        for row in asked
    ]


def _conditions(poll: Poll) -> dict:
    """How many conditional answers gave each condition (a JSON list, matched as text so
    SQLite and PostgreSQL agree), and the latest free-text conditions."""
    conditional = Reply.objects.filter(poll=poll, decision=CONDITIONAL)
    counts = conditional.aggregate(
        total=Count("pk"),
        **{
            value: Count("pk", filter=Q(conditions__icontains=f'"{value}"'))
            for value in Reply.Condition.values
        },
    )
    texts = (
        conditional.exclude(conditions_text="")
        .order_by("-updated_at")
        .values("agency_id", "agency__name", "conditions_text", "updated_at")[:20]
    )
    return {
        "conditions": [
            {"condition": value, "label": label, "replies": counts[value]}
            for value, label in Reply.Condition.choices
        ],
        "conditions_replies": counts["total"],
        "conditions_texts": [
            {
                "agency_id": t["agency_id"],
                "agency": t["agency__name"],
                "text": t["conditions_text"],
            }
            for t in texts
        ],
    }


# What poll_stamp reads of the poll itself: a live refresh loads no more than these.
STAMP_FIELDS = ("state", "deadline", "updated_at", "sent_at", "closed_at", "cancelled_at")


def poll_stamp(*, poll: Poll, now: datetime | None = None) -> str:
    """A short fingerprint of everything the dashboard shows that can change: answers, chasing,
    delivery and the poll's own state, and of the clock only where a figure moves with it (the
    reply-progress series gains a point when a step turns). Unchanged stamp, unchanged figures,
    so the dashboard's live refresh (204) and the API's ETag (304) hold for as long as that is
    true, however slowly a client polls. The poll's own fields are read from the row it was
    given; the answers' and invitations' part is counted at most every few seconds
    (selectors.poll_activity)."""
    moments = progress_moments(poll=poll, now=now)
    parts = [poll.state, poll.deadline, poll.updated_at, *selectors.poll_activity(poll.pk)]
    parts.append(f"{moments[1] - moments[0]}/{moments[-1].isoformat()}" if moments else "")
    return hashlib.sha1("|".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:16]


# Lists on the dashboard -----------------------------------------------------------------------

REPLY_SORTS = {
    "agency": ("agency__name",),
    "region": ("agency__region__name", "agency__name"),
    "decision": ("decision", "agency__name"),
    "officers": ("sort_officers", "agency__name"),
    "depart": ("sort_depart", "agency__name"),
    "travel": ("sort_travel", "agency__name"),
    "arrival": ("earliest_arrival_minutes", "agency__name"),
    "changed": ("updated_at", "agency__name"),
}


def _line_figure(reply_lines, aggregate):
    return Subquery(reply_lines.values("reply_id").annotate(v=aggregate).values("v"))


def poll_replies(*, poll: Poll, within: int | None, sort: str = "arrival"):
    """The poll's answers in the order of `sort` (a key of REPLY_SORTS, '-' first for
    descending), narrow: page it, then fetch the page with `reply_rows`. Sorting on stored
    totals needs no join; officers within a window, departure and travel sort on a subquery."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    keys = REPLY_SORTS.get(key, REPLY_SORTS["arrival"])
    replies = Reply.objects.filter(poll=poll)
    sending = ReplyLine.objects.filter(reply_id=OuterRef("pk"), officers__gt=0)
    if key == "officers":
        replies = replies.annotate(
            sort_officers=F("officers")
            if within is None
            else _line_figure(sending.filter(arrival_minutes__lte=within), Sum("officers"))
        )
    elif key in ("depart", "travel"):
        column = f"{key}_minutes"
        replies = replies.annotate(**{f"sort_{key}": _line_figure(sending, Min(column))})
    first = F(keys[0]).desc(nulls_last=True) if descending else F(keys[0]).asc(nulls_last=True)
    return replies.order_by(first, *keys[1:], "pk")  # ties by name, A to Z either way


def reply_rows(*, ids: list[int], within: int | None) -> list[Reply]:
    """The answers `ids`, in that order, with their figures: officers there within the window,
    and the fastest team's departure, travel and arrival (whatever the window)."""
    sending = Q(lines__officers__gt=0)
    in_time = sending if within is None else sending & Q(lines__arrival_minutes__lte=within)
    rows = (
        Reply.objects.filter(pk__in=ids)
        .select_related("agency__region", "updated_by", "updated_via")
        # The lines with their team types in one statement (a prefetch per level costs more).
        .prefetch_related(Prefetch("lines", queryset=ReplyLine.objects.select_related("team_type")))
        .annotate(
            officers_in_time=Sum("lines__officers", filter=in_time, default=0),
            depart=Min("lines__depart_minutes", filter=sending),
            travel=Min("lines__travel_minutes", filter=sending),
            backed=Sum("lines__officers_backed", filter=in_time, default=0),
            arrival=Min("lines__arrival_minutes", filter=sending),
            channel=selectors.current_channel(),
        )
        .in_bulk()
    )
    return [rows[pk] for pk in ids if pk in rows]


def _answered(poll: Poll):
    return Reply.objects.filter(poll=poll, agency=OuterRef("agency_id"))


def poll_silent(*, poll: Poll):
    """Invitations of agencies that have not answered: whom they went to and how chasing went."""
    return (
        Invitation.objects.filter(poll=poll)
        .exclude(Exists(_answered(poll)))
        .select_related("agency__region", "contact")
        .order_by("agency__name", "is_escalation", "pk")
    )


def silent_rows(*, ids: list[int]) -> list[Invitation]:
    """The silent invitations `ids` (a page of poll_silent's, paged narrow), in that order."""
    rows = Invitation.objects.filter(pk__in=ids).select_related("agency", "contact").in_bulk()
    return [rows[pk] for pk in ids if pk in rows]


def poll_declines(*, poll: Poll):
    return (
        Reply.objects.filter(poll=poll, decision=UNAVAILABLE)
        .select_related("agency")
        .order_by("-updated_at", "pk")
    )


def poll_map_points(*, poll: Poll, within: int | None, since: datetime | None = None) -> list[list]:
    """One point per asked agency: [id, name, lat, lon, decision or "", officers in time,
    earliest arrival]; with `since`, only the agencies whose answer changed after it (a live
    map fetches the whole set once, then only what changed: not 20,000 points per change)."""
    counted = Q(poll=poll, officers__gt=0, reply__agency_id=OuterRef("pk"))
    if within is not None:
        counted &= Q(arrival_minutes__lte=within)
    officers = (
        ReplyLine.objects.filter(counted).values("poll_id").annotate(n=Sum("officers")).values("n")
    )
    replies = Reply.objects.filter(poll=poll, agency_id=OuterRef("pk"))
    asked = Agency.objects.filter(
        Exists(Invitation.objects.filter(poll=poll, agency=OuterRef("pk")))
    )
    if since is not None:  # answered since, or asked since (a wave, agencies added by hand)
        asked = asked.filter(
            Exists(replies.filter(updated_at__gt=since))
            | Exists(
                Invitation.objects.filter(poll=poll, agency=OuterRef("pk"), created_at__gt=since)
            )
        )
    points = (
        asked.annotate(
            decision=Subquery(replies.values("decision")[:1]),
            officers_in_time=Subquery(officers),
            arrival=Subquery(replies.values("earliest_arrival_minutes")[:1]),
        )
        .values_list(
            "pk", "name", "latitude", "longitude", "decision", "officers_in_time", "arrival"
        )
        .order_by("name")
    )
    return [[*row[:4], row[4] or "", row[5] or 0, row[6]] for row in points]


# The overview ---------------------------------------------------------------------------------


def open_polls():
    """Open polls with their reply progress and the officers who can be there within each
    poll's own default window (its need's deadline, else any time), as its dashboard counts
    them: the same figure on the overview and on the poll's page, labelled with its window."""
    asked = (
        Invitation.objects.filter(poll=OuterRef("pk"))
        .values("poll_id")
        .annotate(n=Count("agency_id", distinct=True))
        .values("n")
    )
    replies = Reply.objects.filter(poll=OuterRef("pk")).values("poll_id")
    return (
        Poll.objects.filter(state=Poll.State.OPEN)
        .select_related("requesting_agency")
        .annotate(
            asked=Subquery(asked),
            replied=Subquery(replies.annotate(n=Count("pk")).values("n")),
        )
        .order_by("deadline", "pk")
    )


def with_officers_in_window(polls) -> list:
    """Each poll with `window` (minutes, None for any time), `window_label`, and the officers
    available and available with conditions who can be there within it. One grouped query for
    every poll (officers summed by poll, decision and arrival minute); the windows are applied
    to those few sums."""
    polls = list(polls)
    sums = (
        ReplyLine.objects.filter(poll__in=[p.pk for p in polls], officers__gt=0)
        .filter(decision__in=[AVAILABLE, CONDITIONAL])
        .values_list("poll_id", "decision", "arrival_minutes")
        .annotate(n=Sum("officers"))
        .order_by()
    )
    by_poll: dict[int, list] = {}
    for poll_id, decision, arrival, n in sums:
        by_poll.setdefault(poll_id, []).append((decision, arrival, n))
    for poll in polls:
        poll.window = need_deadline_minutes(poll)
        poll.window_label = duration_label(poll.window)
        there = [
            (decision, n)
            for decision, arrival, n in by_poll.get(poll.pk, [])
            if poll.window is None or arrival <= poll.window
        ]
        poll.officers_available = sum(n for d, n in there if d == AVAILABLE)
        poll.officers_conditional = sum(n for d, n in there if d == CONDITIONAL)
    return polls


STANDING_WINDOWS = (7, 30, 90, 365)  # days


def standing_readiness(*, days: int, now: datetime | None = None) -> dict:
    """The registry's standing readiness: for every active team, the latest statement about it
    in answers saved within `days` (its line in an answer, or its agency declining), summed by
    region and by team type. Cancelled polls do not count.

    One statement: candidate statements, ranked per team by a window function, latest kept."""
    since = (now or timezone.now()) - timedelta(days=days)
    line, reply, team, poll, agency = (
        m._meta.db_table for m in (ReplyLine, Reply, SpecialTeam, Poll, Agency)
    )
    region_t, type_t = Region._meta.db_table, TeamType._meta.db_table
    figures = (
        "COUNT(*), SUM(CASE WHEN n = 1 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN decision = %s THEN officers ELSE 0 END), "
        "SUM(CASE WHEN decision = %s THEN officers ELSE 0 END), "
        "SUM(CASE WHEN decision = %s THEN 1 ELSE 0 END), SUM(members)"
    )
    sql = f"""
        WITH statements AS (
            SELECT l.team_id, r.updated_at, r.id AS reply_id, r.decision, l.officers
            FROM {line} l JOIN {reply} r ON r.id = l.reply_id JOIN {poll} p ON p.id = r.poll_id
            WHERE p.state <> %s AND r.updated_at >= %s AND r.decision <> %s
            UNION ALL
            SELECT t.id, r.updated_at, r.id, r.decision, 0
            FROM {reply} r JOIN {poll} p ON p.id = r.poll_id
            JOIN {team} t ON t.agency_id = r.agency_id
            WHERE p.state <> %s AND r.updated_at >= %s AND r.decision = %s
        ), ranked AS (
            SELECT s.*, ROW_NUMBER() OVER (
                PARTITION BY s.team_id ORDER BY s.updated_at DESC, s.reply_id DESC
            ) AS n
            FROM statements s
        ), teams AS (
            SELECT g.name AS region, ty.name AS team_type, ty.sort_order AS type_order,
                   t.members, k.n, k.decision, k.officers
            FROM {team} t JOIN {agency} a ON a.id = t.agency_id
            JOIN {region_t} g ON g.id = a.region_id JOIN {type_t} ty ON ty.id = t.team_type_id
            LEFT JOIN ranked k ON k.team_id = t.id AND k.n = 1
            WHERE t.active AND a.active
        )
        SELECT 'region', region, 0, {figures} FROM teams GROUP BY region
        UNION ALL
        SELECT 'type', team_type, MIN(type_order), {figures} FROM teams GROUP BY team_type
        UNION ALL
        SELECT 'total', '', 0, {figures} FROM teams
        ORDER BY 1, 3, 2
    """  # noqa: S608 (table names only; every value is a parameter)
    params = [Poll.State.CANCELLED, since, UNAVAILABLE, Poll.State.CANCELLED, since, UNAVAILABLE]
    params += [AVAILABLE, CONDITIONAL, UNAVAILABLE] * 3
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    keys = ("teams", "answered", "available", "conditional", "declined", "members")
    grouped = {"region": [], "type": [], "total": []}
    for kind, name, _order, *figures in rows:  # at most regions + team types + 1 rows
        grouped[kind].append(
            {"name": name, **dict(zip(keys, (int(f or 0) for f in figures), strict=True))}
        )
    total = grouped["total"][0] if grouped["total"] else dict.fromkeys(keys, 0)
    return {
        "days": days,
        "since": since,
        "by_region": grouped["region"],
        "by_type": grouped["type"],
        "total": total,
    }
