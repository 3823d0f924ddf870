"""The roll-up of members' answers into the agency's (issue 19): per targeted team, who was asked
and what they said, who is qualified for the poll, when each willing member would arrive, and
the lines the commander's form starts from. Nothing here counts on a dashboard until the
commander submits the agency's answer; then `rollup_commit` marks the members whose answers
back the officers sent."""

from dataclasses import dataclass, field
from functools import cached_property

from django.db.models import Count, Max, Q
from django.utils import timezone

from agencies.models import MemberQualification, SpecialTeam, TeamMember
from readiness.db import loaded

from . import selectors
from .models import MemberAsk, Poll

Answer = MemberAsk.Answer
# What the tally and its pages read of an ask: a team of 500 is 500 rows, kept narrow.
TALLY_FIELDS = ("team", "member", "state", "failure_reason", "answer", "depart_minutes", "start",
                "start_place", "travel_minutes", "travel_from", "note", "answered_via",
                "backing")  # fmt: skip
# Their columns, the ask's id first (built into instances by readiness.db.loaded: Django's own
# instances would cost a team of 500 ten times as much).
_ASK_COLUMNS = ("id", *(MemberAsk._meta.get_field(f).attname for f in TALLY_FIELDS))
_MEMBER = _ASK_COLUMNS.index("member_id")


def targeted_teams(poll: Poll, agency) -> list[SpecialTeam]:
    teams, targeted = selectors.reply_teams(poll=poll, agency=agency)
    return [t for t in teams if t.pk in targeted]


@dataclass
class TeamTally:
    team: SpecialTeam
    asks: list = field(default_factory=list)
    away: list = field(default_factory=list)  # members away (leave, injury...): not asked
    required: bool = False  # the poll requires roster qualifications

    def count(self, answer: str) -> int:
        return sum(1 for a in self.asks if a.answer == answer)

    @property
    def asked(self) -> int:
        return len(self.asks)

    @property
    def answered(self) -> int:
        return sum(1 for a in self.asks if a.answer)

    @property
    def willing(self) -> int:
        return self.count(Answer.WILLING)

    @property
    def conditional(self) -> int:
        return self.count(Answer.CONDITIONAL)

    @property
    def not_willing(self) -> int:
        return self.count(Answer.NOT_WILLING)

    @property
    def silent(self) -> int:
        return self.asked - self.answered

    @cached_property  # read often by the page; computed once the tally is complete
    def counted(self) -> list:
        """The members the agency's line can count: willing without conditions and holding
        every qualification the poll requires, unexpired; soonest to arrive first."""
        found = [a for a in self.asks if a.answer == Answer.WILLING and a.qualified]
        return sorted(found, key=lambda a: (a.arrival is None, a.arrival or 0, a.member.name))

    @property
    def arrivals(self) -> dict | None:
        """When the members counted would arrive: the first, half of them, and the last."""
        times = [a.arrival for a in self.counted if a.arrival is not None]
        if not times:
            return None
        return {"first": times[0], "half": times[(len(times) - 1) // 2], "last": times[-1]}

    @property
    def unqualified(self) -> int:
        """Willing, but missing (or with an expired) required qualification."""
        return sum(1 for a in self.asks if a.answer == Answer.WILLING and not a.qualified)


def tally(*, poll: Poll, agency, today=None, teams=None) -> list[TeamTally]:
    """Per targeted team, its members' answers (three queries whatever the team's size): each
    ask carries `qualified` (every required qualification held and unexpired today) and
    `missing` (the names of those it lacks)."""
    today = today or timezone.localdate()
    teams = targeted_teams(poll, agency) if teams is None else teams
    by_team = {t.pk: TeamTally(t) for t in teams}
    asks = [
        _ask(row)
        for row in MemberAsk.objects.filter(poll=poll, agency=agency).values_list(
            *_ASK_COLUMNS, "member__name", "member__is_leader"
        )
    ]
    required = {q.pk: q.name for q in poll.required}
    held: dict[int, set[int]] = {}
    if required and asks:
        for member_id, qualification_id in MemberQualification.objects.filter(
            Q(expires_on__isnull=True) | Q(expires_on__gte=today),
            member__in=[a.member_id for a in asks], qualification__in=required,
        ).values_list("member_id", "qualification_id"):  # fmt: skip
            held.setdefault(member_id, set()).add(qualification_id)
    for ask in asks:
        ask.missing = [
            name for pk, name in required.items() if pk not in held.get(ask.member_id, ())
        ]
        ask.qualified = not ask.missing
        if ask.team_id not in by_team:  # a team no longer targeted, asked before (rare)
            by_team[ask.team_id] = TeamTally(ask.team)
        by_team[ask.team_id].asks.append(ask)
    for t in by_team.values():
        t.required = bool(required)
    asked = {a.member_id for a in asks}
    for member in TeamMember.objects.filter(
        team__in=by_team, active=True, away_until__gte=today
    ).exclude(pk__in=asked):
        by_team[member.team_id].away.append(member)
    return list(by_team.values())


def _ask(row: tuple) -> MemberAsk:
    member = loaded(TeamMember, {"id": row[_MEMBER], "name": row[-2], "is_leader": row[-1]})
    return loaded(MemberAsk, dict(zip(_ASK_COLUMNS, row[:-2], strict=True)),
                  related={"member": member})  # fmt: skip


def stamp(*, poll: Poll, agency) -> str:
    """Changes whenever an ask is added or answered: the live tally refreshes only then."""
    figures = MemberAsk.objects.filter(poll=poll, agency=agency).aggregate(
        asks=Count("pk"), last=Max("answered_at")
    )
    last = figures["last"].timestamp() if figures["last"] else 0
    return f"{figures['asks']}-{last:.6f}"


def suggested_lines(tallies: list[TeamTally]) -> dict[int, dict]:
    """The agency's lines as the members' answers suggest them, per team with members counted
    (willing without conditions and qualified; conditional ones are the commander's call):
    officers = how many; leave = the latest of their departures; travel = what brings the line
    to the arrival of the last of them. So the line's arrival is honest for every officer it
    counts, never the average."""
    suggested = {}
    for t in tallies:
        counted = t.counted
        if not counted:
            continue
        depart = max(a.depart_minutes or 0 for a in counted)
        arrival = max(a.arrival if a.arrival is not None else depart for a in counted)
        suggested[t.team.pk] = {
            "officers": len(counted),
            "depart_minutes": depart,
            "travel_minutes": max(arrival - depart, 0),
            "officers_qualified": len(counted),
        }
    return suggested


def tally_record(tallies: list[TeamTally], lines: list[dict]) -> dict:
    """What the members said beside what the commander sent, per team: kept with the version
    (the difference between the tally and the answer is the commander's, and recorded)."""
    given = {line["team"].pk: line["officers"] or 0 for line in lines}
    suggested = suggested_lines(tallies)
    return {
        t.team.name: {
            "asked": t.asked, "willing": t.willing, "conditional": t.conditional,
            "not_willing": t.not_willing, "silent": t.silent, "unqualified": t.unqualified,
            "away": len(t.away),
            "suggested": suggested.get(t.team.pk, {}).get("officers", 0),
            "given": given.get(t.team.pk, 0),
        }
        for t in tallies
        if t.asks
    }  # fmt: skip


def with_backing(tallies: list[TeamTally], lines: list[dict]) -> list[dict]:
    """The lines with `officers_backed`: as many of the line's officers as members of that team
    are counted (willing without conditions, qualified)."""
    counted = {t.team.pk: len(t.counted) for t in tallies}
    return [
        {**line, "officers_backed": min(line["officers"] or 0, counted.get(line["team"].pk, 0))}
        for line in lines
    ]


def rollup_commit(*, poll: Poll, agency, tallies: list[TeamTally], lines: list[dict]) -> int:
    """As the commander's answer is saved (same transaction): mark the members whose answers
    back the officers sent (the soonest to arrive first, as many as the line's officers), and
    unmark the rest. The dashboard's member arrival curve reads these. Two statements."""
    officers = {line["team"].pk: line["officers"] or 0 for line in lines}
    backing = [a.pk for t in tallies for a in t.counted[: officers.get(t.team.pk, 0)]]
    asks = MemberAsk.objects.filter(poll=poll, agency=agency)
    asks.exclude(pk__in=backing).filter(backing=True).update(backing=False)
    return asks.filter(pk__in=backing).update(backing=True)
