"""Reads for polls: who a poll would ask."""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    prefetch_related_objects,
)
from django.utils import timezone

from agencies.models import Agency, Contact, SpecialTeam, TeamMembership
from readiness import permissions
from readiness.db import FETCH_REST, Lookup

from .geo import distance_km_expression
from .models import InboundMessage, Invitation, Poll, Reply, ReplyLine, ReplyVersion


def _team_filter(type_ids: list[int], levels: list[tuple[int, int]], prefix: str = "") -> Q:
    """Active teams of the targeted types and levels (any active team when none is targeted)."""
    condition = Q(**{f"{prefix}active": True})
    if type_ids or levels:
        wanted = Q(**{f"{prefix}team_type_id__in": type_ids}) if type_ids else Q(pk__in=[])
        for team_type_id, level in levels:
            wanted |= Q(**{f"{prefix}team_type_id": team_type_id, f"{prefix}level": level})
        condition &= wanted
    return condition


@dataclass
class Targets:
    """Whom a poll asks, saved or still being composed."""

    latitude: float
    longitude: float
    regions: list[int] = field(default_factory=list)
    type_ids: list[int] = field(default_factory=list)
    levels: list[tuple[int, int]] = field(default_factory=list)  # (team type id, level)
    kinds: list[str] = field(default_factory=list)
    radius_km: float | None = None
    picked: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, poll: Poll) -> "Targets":
        return cls(
            latitude=poll.destination_latitude,
            longitude=poll.destination_longitude,
            regions=list(poll.target_regions.values_list("pk", flat=True)),
            type_ids=list(poll.target_team_types.values_list("pk", flat=True)),
            levels=list(poll.target_levels.values_list("team_type_id", "level")),
            kinds=list(poll.target_kinds),
            radius_km=poll.target_radius_km,
            picked=list(poll.target_agencies.values_list("pk", flat=True)),
        )


def poll_recipients(*, poll: Poll) -> QuerySet[Agency]:
    return recipients(targets=Targets.of(poll))


def recipients(*, targets: Targets) -> QuerySet[Agency]:
    """Active agencies the targets select, with distance, their targeted teams and contacts.

    An agency matches when it meets every filter that is set (regions, kinds, radius, team
    types/levels: a team it hosts or contributes officers to), or when it is hand-picked.
    `primary_contacts` is attached; agencies without a usable contact are still listed, so the
    preview can warn about them.
    """
    type_ids, levels, picked = targets.type_ids, targets.levels, targets.picked
    qs = Agency.objects.filter(active=True).select_related("region")
    qs = qs.annotate(distance_km=distance_km_expression(targets.latitude, targets.longitude))
    matched = Q()
    if targets.regions:
        matched &= Q(region_id__in=targets.regions)
    if targets.kinds:
        matched &= Q(kind__in=targets.kinds)
    if targets.radius_km is not None:
        matched &= Q(distance_km__lte=targets.radius_km)
    if type_ids or levels:
        teams = _team_filter(type_ids, levels)
        hosted = SpecialTeam.objects.filter(teams, agency=OuterRef("pk"))
        member = TeamMembership.objects.filter(
            _team_filter(type_ids, levels, "team__"), agency=OuterRef("pk")
        )
        matched &= Exists(hosted) | Exists(member)
    has_filters = bool(matched)
    if has_filters and picked:
        qs = qs.filter(matched | Q(pk__in=picked))
    elif has_filters:
        qs = qs.filter(matched)
    else:
        qs = qs.filter(pk__in=picked)  # no filter at all: only hand-picked agencies
    return qs.prefetch_related(
        Prefetch(
            "contacts",
            queryset=Contact.objects.filter(active=True, role=Contact.Role.PRIMARY),
            to_attr="primary_contacts",
        ),
        Prefetch(
            "teams",
            queryset=SpecialTeam.objects.filter(_team_filter(type_ids, levels)).select_related(
                "team_type"
            ),
            to_attr="targeted_teams",
        ),
    ).order_by("distance_km", "name")


_SENT_POLL_FACTS: dict[tuple, tuple[frozenset, frozenset, frozenset]] = {}


def _sent_poll_facts(poll: Poll) -> tuple[frozenset, frozenset, frozenset]:
    """The poll's targeted team type ids, (type id, level) pairs and required qualification
    ids. A sent poll's never change (only drafts are edited), so they are kept in memory:
    every answer needs them."""
    key = (poll.pk, poll.sent_at)  # a restored database cannot serve another poll's facts
    cached = _SENT_POLL_FACTS.get(key)
    if cached is None:
        cached = (
            frozenset(poll.target_team_types.values_list("pk", flat=True)),
            frozenset(poll.target_levels.values_list("team_type_id", "level")),
            frozenset(q.pk for q in poll.required),  # the instance's list, which pages show
        )
        if poll.state != Poll.State.DRAFT and poll.sent_at:
            if len(_SENT_POLL_FACTS) > 1000:
                _SENT_POLL_FACTS.clear()
            _SENT_POLL_FACTS[key] = cached
    return cached


def poll_team_targets(poll: Poll) -> tuple[frozenset, frozenset]:
    """The poll's targeted team type ids and (type id, level) pairs."""
    return _sent_poll_facts(poll)[:2]


def poll_has_requirements(poll: Poll) -> bool:
    """Whether an answer says how many officers meet the poll's requirements: it has typed
    ones, or requires roster qualifications."""
    return bool(poll.requirements) or bool(_sent_poll_facts(poll)[2])


def reply_teams(*, poll: Poll, agency: Agency, reply=None) -> tuple[list[SpecialTeam], set[int]]:
    """The teams an agency may answer for (its active teams, and any already in its reply),
    targeted ones first, and the ids of those the poll targets."""
    type_ids, levels = poll_team_targets(poll)
    in_reply = [line.team_id for line in reply.lines.all()] if reply else []
    teams = _ACTIVE_TEAMS.rows(agency.pk)
    if set(in_reply) - {t.pk for t in teams}:  # an inactive team already in the answer
        teams = list(
            SpecialTeam.objects.filter(Q(agency=agency) & (Q(active=True) | Q(pk__in=in_reply)))
            .select_related("team_type")
            .order_by("team_type__sort_order", "name")
        )
    targeted = {
        t.pk
        for t in teams
        if t.active
        and (
            not (type_ids or levels)
            or t.team_type_id in type_ids
            or (t.team_type_id, t.level) in levels
        )
    }
    teams.sort(key=lambda t: t.pk not in targeted)  # stable: targeted first
    return teams, targeted


_ACTIVE_TEAMS = Lookup(
    SpecialTeam,
    lambda agency_id: (
        SpecialTeam.objects.filter(agency_id=agency_id, active=True)
        .select_related("team_type")
        .order_by("team_type__sort_order", "name")
    ),
    kinds=(int,),
)


def stored_reply(*, poll: Poll, agency) -> Reply | None:
    """An agency's answer to a poll with its team lines and their teams (None before the
    first), unlocked: what the form is built from, and what replies.reply_submit saves over
    only while its version is still the stored one."""
    reply = _STORED_REPLY.first(poll.pk, agency.pk)
    if reply is not None:
        lines = Prefetch("lines", queryset=ReplyLine.objects.select_related("team"))
        prefetch_related_objects([reply], lines)
    return reply


_STORED_REPLY = Lookup(
    Reply,
    lambda poll_id, agency_id: Reply.objects.filter(
        poll_id=poll_id, agency_id=agency_id
    ).order_by(),  # one row
    kinds=(int, int),
    prepared=False,  # the replies fill up as it runs (see Lookup)
)


def reply_feed(*, poll: Poll, limit: int = 15):
    """The latest saved answers to a poll, newest first, for the coordinator's feed."""
    return poll.reply_versions.select_related("reply__agency").order_by("-created_at", "-pk")[
        :limit
    ]


def agency_polls(*, agency: Agency, now=None):
    """Polls an agency was asked, with its reply (if any): the ones still taking answers first,
    the most urgent (the nearest deadline) at the top; then the others, newest first."""
    now = now or timezone.now()
    replies = Reply.objects.filter(poll=OuterRef("pk"), agency=agency)
    taking_answers = Q(state=Poll.State.OPEN, deadline__gt=now)
    return (
        Poll.objects.filter(Exists(Invitation.objects.filter(poll=OuterRef("pk"), agency=agency)))
        .exclude(state=Poll.State.DRAFT)
        .select_related("created_by", "requesting_agency")
        .annotate(
            reply_decision=Subquery(replies.values("decision")[:1]),
            reply_version=Subquery(replies.values("version")[:1]),
            reply_updated_at=Subquery(replies.values("updated_at")[:1]),
            reply_officers=Subquery(replies.values("officers")[:1]),
            is_open=Case(When(taking_answers, then=Value(0)), default=Value(1)),
            open_deadline=Case(When(taking_answers, then=F("deadline"))),
        )
        .order_by("is_open", F("open_deadline").asc(nulls_last=True), "-deadline")
    )


def agency_invitation(*, poll_id: int, agency_id: int) -> Invitation | None:
    """The agency's invitation to a sent poll (its primary contact's before escalations), or None
    when the agency was not asked: what a signed-in commander answers through."""
    return (
        Invitation.objects.select_related("poll__created_by", "poll__requesting_agency", "agency")
        .filter(poll_id=poll_id, agency_id=agency_id)
        .exclude(poll__state=Poll.State.DRAFT)
        .order_by("is_escalation", "pk")
        .first()
    )


def invitation_by_token(token: str, *, page: bool = True) -> Invitation | None:
    """The invitation a reply link belongs to: the newest link in one indexed lookup, an
    earlier one (a duplicate, a reminder, a forwarded email) in a second. With `page` false
    (an answer posted, which mostly redirects), without what only the pages show of the poll
    (a form shown again for a mistake loads it then)."""
    token_hash = Invitation.hash_token(token)
    return (_BY_TOKEN_PAGE if page else _BY_TOKEN).first(token_hash) or (
        _BY_EARLIER_TOKEN_PAGE if page else _BY_EARLIER_TOKEN
    ).first(token_hash)


# What an answer posted by link reads of its invitation, poll, agency and contact when it is
# saved (its refusal, its teams, its form, its version, audit event and confirmation): 19 of
# their 100 columns. Each column a row brings costs the driver a name and a value to decode and
# the model a field to set; a page shown for a mistake or a refusal loads the rest at its first
# read of one, in one query per object (FETCH_REST). tests/surveys/test_replies.py and
# test_sms_in.py check that an answer reads no field missing here (each would cost a query).
_POSTED_FIELDS = (
    "poll_id", "agency_id", "contact_id", "channel", "email", "travel_minutes", "revoked_at",
    "poll__title", "poll__state", "poll__deadline", "poll__sent_at", "poll__requirements",
    "agency__name", "contact__name", "contact__email",
)  # fmt: skip


def _by_token(*, page: bool, earlier: bool) -> Lookup:
    related = ("poll", "agency", "contact")
    if page:
        related += ("poll__created_by", "poll__requesting_agency")
    lookup = "links__token_hash" if earlier else "token_hash"

    def queryset(token_hash):
        found = (Invitation.objects.select_related(*related)
                 .filter(**{lookup: token_hash}).order_by("pk")[:1])  # fmt: skip
        return found if page else found.only(*_POSTED_FIELDS).fetch_mode(FETCH_REST)

    return Lookup(Invitation, queryset)


# Compiled once per process (the hottest lookups of an answer): the newest link, an earlier one.
_BY_TOKEN = _by_token(page=False, earlier=False)
_BY_TOKEN_PAGE = _by_token(page=True, earlier=False)
_BY_EARLIER_TOKEN = _by_token(page=False, earlier=True)
_BY_EARLIER_TOKEN_PAGE = _by_token(page=True, earlier=True)


# What an answer by text reads of its invitations, as an answer by link (above), and what the
# text's own handling reads: the codes, the order, whether the agency answered (a first answer
# reads nothing more), the contact's title (the authoriser's rank).
# A commander's "ASK" (their members asked by text) reads the rest, in one query per object.
_TEXTED_FIELDS = (*_POSTED_FIELDS, "mobile", "reply_code", "created_at", "replied_at",
                  "contact__title")  # fmt: skip


def open_texts(sender: str) -> list[Invitation]:
    """The text invitations to `sender` (an E.164 number) of polls taking answers, newest
    first (sorted here: ordering a select_related query costs more than the query)."""
    return sorted(_OPEN_TEXTS.rows(sender), key=lambda i: (i.created_at, i.pk), reverse=True)


_OPEN_TEXTS = Lookup(
    Invitation,
    lambda mobile: (
        Invitation.objects.filter(
            channel=Invitation.Channel.SMS,
            mobile=mobile,
            poll__state__in=(Poll.State.OPEN, Poll.State.SENDING),
        )
        # Said, though the sender's number is never empty: the plan PostgreSQL keeps for every
        # sender can then use the index of invitations with a number (invitation_sms_code_idx).
        .exclude(mobile="")
        .select_related("poll", "agency", "contact")
        .only(*_TEXTED_FIELDS)
        .fetch_mode(FETCH_REST)
        .order_by()
    ),
    kinds=("+13125550100",),  # a number the field takes, as the marker
)


def polls_visible_to(user, polls):
    """Polls the user may read: all for coordinators and officials; for a commander, the sent
    polls their agency was asked (what "My agency's polls" lists)."""
    if permissions.can_view_polls(user):
        return polls
    if permissions.can_answer_for_agency(user):
        asked = Invitation.objects.filter(poll=OuterRef("pk"), agency_id=user.agency_id)
        return polls.filter(Exists(asked)).exclude(state=Poll.State.DRAFT)
    return polls.none()


def current_channel(reply: str = "pk", version: str = "version"):
    """How the current version of an answer came (ReplyVersion.Channel), as a subquery."""
    current = ReplyVersion.objects.filter(reply=OuterRef(reply), number=OuterRef(version))
    return Subquery(current.values("channel")[:1])


def inbound_needing_attention():
    """Messages not understood or not matched to an open poll, that nobody has seen to yet."""
    return InboundMessage.objects.filter(
        outcome__in=(InboundMessage.Outcome.NOT_UNDERSTOOD, InboundMessage.Outcome.UNMATCHED),
        handled_at__isnull=True,
    )


ACTIVITY_KEY = "surveys:poll-activity:{}"
UNDELIVERED = (Invitation.Receipt.UNDELIVERED, Invitation.Receipt.FAILED)


def poll_activity(poll_id: int) -> list:
    """A poll's answers and invitations in a few numbers (how many, how many sent, failed and
    delivered, the latest change of each kind): what changes whenever a dashboard figure can.

    Counted at most once every settings.POLL_ACTIVITY_CACHE_SECONDS per poll and kept in the
    cache (Redis in production, shared by every process), so N officials refreshing one poll's
    dashboard every few seconds cost one count, not N. A saved answer forgets it as it commits
    (poll_activity_changed), so answers show at the next refresh (within those seconds, if a
    count taken just before the commit was kept); deliveries, receipts and chasing within
    those seconds."""
    key = activity_key(poll_id)
    activity = cache.get(key)
    if activity is None:
        replies = Reply.objects.filter(poll_id=poll_id).aggregate(
            n=Count("pk"), last=Max("updated_at")
        )
        invitations = Invitation.objects.filter(poll_id=poll_id).aggregate(
            n=Count("pk"),
            sent=Count("pk", filter=Q(state=Invitation.State.SENT)),
            failed=Count("pk", filter=Q(state=Invitation.State.FAILED)),
            delivered=Count("pk", filter=Q(receipt=Invitation.Receipt.DELIVERED)),
            undelivered=Count("pk", filter=Q(receipt__in=UNDELIVERED)),
            reminded=Max("last_reminded_at"),
            escalated=Max("escalated_at"),
            revoked=Max("revoked_at"),
        )
        activity = [*replies.values(), *invitations.values()]
        cache.set(key, activity, settings.POLL_ACTIVITY_CACHE_SECONDS)
    return activity


def activity_key(poll_id: int) -> str:
    return ACTIVITY_KEY.format(poll_id)


def poll_activity_changed(poll_id: int) -> None:
    """Forget a poll's counted activity once the current transaction commits (a count taken
    before then, without the change, goes with it). Forgetting it also before the commit would
    cost every answer a second round trip to the cache and save nothing: a count kept
    before this one commits is forgotten anyway."""
    key = activity_key(poll_id)
    # A cache that cannot be reached does not fail what committed: the count expires anyway.
    transaction.on_commit(lambda: cache.delete(key), robust=True)


def message_seen(channel: str, message_id: str) -> bool:
    """Whether this inbound message (a text, an email) was taken already."""
    return _SEEN.first(channel, message_id) is not None


_SEEN = Lookup(
    InboundMessage,
    lambda channel, message_id: InboundMessage.objects.filter(
        channel=channel, message_id=message_id
    ).only("id")[:1],
    kinds=(str, str),
    prepared=False,  # the messages fill up during a call-out (see Lookup)
)
