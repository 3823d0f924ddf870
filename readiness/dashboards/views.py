"""Dashboards: the overview of open polls and standing readiness, and each poll's dashboard.

Coordinators and officials only (permissions.can_view_polls). Figures come from
readiness.dashboards.figures; these views parse the controls, page the lists and render.
"""

import csv

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET

from readiness import permissions
from readiness.db import Lookup
from surveys import selectors
from surveys.models import Poll, Reply, ReplyLine, ReplyVersion

from . import charts, figures

PAGE_SIZE = 50
# A rendering of the lists is shared while the stamp holds, for at most this long: what the
# stamp does not count (a contact's or agency's name edited, a text receipt other than
# delivered, a failure's wording) shows within it.
LISTS_CACHE_SECONDS = 10


def _poll(poll_id: int) -> Poll:
    poll = _POLL.first(poll_id) if 0 < poll_id < 2**63 else None  # a key's range (bigint)
    if poll is None:
        raise Http404("No such poll.")
    return poll


# Compiled once per process: every dashboard request (and each watcher's) reads it.
_POLL = Lookup(
    Poll,
    lambda poll_id: Poll.objects.select_related(
        "created_by", "requesting_agency", "needed_team_type", "cancelled_by"
    ).filter(pk=poll_id),
    kinds=(int,),
)


def _within(request, poll: Poll) -> tuple[int | None, str]:
    return figures.parse_within(request.GET.get("within", ""), poll)


def _within_choices(poll: Poll, within: int | None) -> list[dict]:
    minutes = set(figures.WITHIN_CHOICES)
    deadline = figures.need_deadline_minutes(poll)
    extra = {m for m in (deadline, within) if m is not None}
    choices = [{"value": "all", "label": "any time", "selected": within is None}]
    for m in sorted(minutes | extra):
        label = figures.duration_label(m)
        if m == deadline:
            label += " (the need's deadline)"
        choices.append({"value": str(m), "label": label, "selected": m == within})
    return choices


def _page(request, queryset, param: str, count: int):
    """A page of a list whose length is already known from the figures (no COUNT query)."""
    paginator = Paginator(queryset, PAGE_SIZE)
    paginator.count = count  # cached_property: set, so Paginator runs no COUNT of its own
    return paginator.get_page(request.GET.get(param))


def _lazy_page(request, rows, param: str, count: int):
    """_page of `rows()`, made only when first used (a cached rendering uses none)."""
    return SimpleLazyObject(lambda: _page(request, rows(), param, count))


def _query(request, **changes) -> str:
    query = request.GET.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value not in (None, ""):
            query[key] = value
    query.pop("stamp", None)
    return query.urlencode()


@require_GET
@permissions.require(permissions.can_view_polls)
def poll_dashboard(request, poll_id: int):
    now = timezone.now()
    if request.htmx and request.GET.get("stamp"):
        # A live refresh that finds nothing new swaps nothing: the poll's row, narrow, and its
        # counted activity (cached for a few seconds), instead of the page.
        live = get_object_or_404(Poll.objects.only(*figures.STAMP_FIELDS), pk=poll_id)
        if figures.poll_stamp(poll=live, now=now) == request.GET["stamp"]:
            return HttpResponse(status=204, headers={"Vary": "HX-Request"})
    poll = _poll(poll_id)
    if poll.state == Poll.State.DRAFT:
        return render(request, "dashboards/poll_dashboard.html", {"poll": poll, "draft": True})
    stamp = figures.poll_stamp(poll=poll, now=now)
    within, within_error = _within(request, poll)
    summary = figures.cached_summary(poll=poll, within=within, now=now, stamp=stamp)
    sort = request.GET.get("sort", "arrival")
    if sort.lstrip("-") not in figures.REPLY_SORTS:
        sort = "arrival"

    # The lists (and their pages, sort links and queries) are built only if the template
    # renders them, not when it has their rendering cached. The answers are paged on a narrow
    # query, then the page's figures fetched: sorting 15,000 answers with their lines joined
    # would cost more than everything else on the page.
    def answers():
        rows = figures.poll_replies(poll=poll, within=within, sort=sort)
        return rows.values_list("pk", flat=True)

    replies = _lazy_page(request, answers, "page", summary.replied)
    reply_rows = SimpleLazyObject(
        lambda: figures.reply_rows(ids=list(replies.object_list), within=within)
    )
    silent_count = summary.asked - summary.replied
    silent = _lazy_page(
        request, lambda: figures.poll_silent(poll=poll).values_list("pk", flat=True),
        "silent_page", summary.silent_invitations,
    )  # fmt: skip
    silent_list = SimpleLazyObject(lambda: figures.silent_rows(ids=list(silent.object_list)))
    declines = _lazy_page(
        request, lambda: figures.poll_declines(poll=poll), "declines_page", summary.unavailable
    )
    charts.bar_widths(summary.by_type, ("available", "conditional"))
    charts.bar_widths(summary.by_region, ("officers_available", "officers_conditional"))
    context = {
        "poll": poll,
        "summary": summary,
        "within": within,
        "within_label": figures.duration_label(within),
        "within_error": within_error,
        "within_choices": _within_choices(poll, within),
        # Drawn only if the figures are rendered, not when their rendering is cached.
        "arrival": SimpleLazyObject(lambda: charts.arrival_chart(summary)),
        "progress": SimpleLazyObject(lambda: charts.progress_chart(summary)),
        "replies": replies,
        "reply_rows": reply_rows,
        "sort": sort,
        "sort_links": SimpleLazyObject(lambda: _sort_links(request, sort)),
        "silent": silent,
        "silent_rows": silent_list,
        "silent_count": silent_count,
        "declines": declines,
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "lists_cache_seconds": LISTS_CACHE_SECONDS,
        "live_query": _query(request),
        "query": SimpleLazyObject(
            lambda: {
                "page": _query(request, page=None),
                "silent_page": _query(request, silent_page=None),
                "declines_page": _query(request, declines_page=None),
            }
        ),
        "show_contacts": permissions.can_view_contacts(request.user),
        "map_tiles_url": settings.MAP_TILES_URL,
        "map_tiles_attribution": settings.MAP_TILES_ATTRIBUTION,
        "now": now,
        "waves": list(poll.waves.select_related("decided_by")) if poll.wave_rings else [],
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "dashboards/poll_dashboard.html#live", context)
    else:
        response = render(request, "dashboards/poll_dashboard.html", context)
    patch_vary_headers(response, ["HX-Request"])  # a cached partial must never stand for the page
    return response


def _sort_links(request, sort: str) -> dict:
    """Each sortable column's link (toggling direction on the current one) and aria-sort."""
    links = {}
    for key in figures.REPLY_SORTS:
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        target = (key if descending else f"-{key}") if current else key
        links[key] = {
            "url": "?" + _query(request, sort=target, page=None),
            "aria": ("descending" if descending else "ascending") if current else "",
        }
    return links


@require_GET
@permissions.require(permissions.can_view_polls)
def poll_dashboard_summary(request, poll_id: int):
    """The dashboard's figures as JSON (the same function the page uses)."""
    poll = _poll(poll_id)
    within, error = _within(request, poll)
    if error:
        return JsonResponse({"error": error, "field": "within"}, status=400)
    return JsonResponse(figures.cached_summary(poll=poll, within=within).as_json())


@require_GET
@permissions.require(permissions.can_view_polls)
def poll_dashboard_map(request, poll_id: int):
    """The map's points: one per asked agency (the page stays light; the map fetches this)."""
    poll = _poll(poll_id)
    within, _ = _within(request, poll)
    try:
        since = parse_datetime(request.GET.get("since") or "")
    except ValueError:  # well formed, but no such moment (a 31st of February)
        since = None
    if since is not None and timezone.is_naive(since):
        since = None  # only what the map itself was given (an aware instant) is trusted
    as_of = timezone.now()  # before the query: a change during it comes again next time
    return JsonResponse(
        {
            "as_of": as_of.isoformat(),
            "partial": since is not None,
            "destination": {
                "name": poll.destination_name,
                "lat": poll.destination_latitude,
                "lon": poll.destination_longitude,
            },
            "fields": ["id", "name", "lat", "lon", "decision", "officers", "arrival_minutes"],
            "agencies": figures.poll_map_points(poll=poll, within=within, since=since),
        }
    )


CSV_COLUMNS = [
    "poll_id", "poll", "agency_code", "agency", "region", "decision", "conditions",
    "conditions_text", "decline_reason", "authorised_by", "note", "team_code", "team",
    "team_type", "level", "officers", "officers_meeting_requirements", "vehicles",
    "depart_minutes", "travel_minutes", "estimated_travel_minutes", "arrival_minutes",
    "deploy_hours", "travel_flagged", "version", "last_changed", "answered_by", "answered",
    "contact",
    "contact_email", "delivery",
]  # fmt: skip
TEAM_CELLS = 13  # team_code .. travel_flagged


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value):
        return value


@require_GET
@permissions.require(permissions.can_view_polls)
def poll_dashboard_csv(request, poll_id: int):
    """Every answer's team lines, one row per line; an answer without lines (a decline) is one
    row with the team columns empty; then a row per asked agency that has not answered, with
    whom it was sent to (contact details for those who may see them) and how delivery went.
    Streamed, so a large poll starts downloading at once."""
    poll = _poll(poll_id)
    show_contacts = permissions.can_view_contacts(request.user)
    silent = figures.poll_silent(poll=poll)
    labels = dict(Reply.Condition.choices)
    channels = dict(ReplyVersion.Channel.choices)
    lines = (
        ReplyLine.objects.filter(poll=poll)
        .annotate(channel=selectors.current_channel("reply_id", "reply__version"))
        .select_related("reply__agency__region", "team", "team_type")
        .order_by("reply__agency__name", "team__team_type__sort_order", "team__name")
    )
    bare = (
        Reply.objects.filter(poll=poll, lines__isnull=True)
        .annotate(channel=selectors.current_channel())
        .select_related("agency__region")
        .order_by("agency__name")
    )

    def reply_cells(reply: Reply) -> list:
        return [
            poll.pk, poll.title, reply.agency.code, reply.agency.name, reply.agency.region.name,
            reply.get_decision_display(), "; ".join(labels.get(c, c) for c in reply.conditions),
            reply.conditions_text, reply.decline_reason, reply.authorised_by, reply.note,
        ]  # fmt: skip

    def rows():
        yield CSV_COLUMNS
        for line in lines.iterator(chunk_size=2000):
            reply, team = line.reply, line.team
            yield [
                *reply_cells(reply), team.code, team.name, line.team_type.name, line.team_level,
                line.officers, line.officers_qualified, line.vehicles, line.depart_minutes,
                line.travel_minutes, line.estimated_travel_minutes, line.arrival_minutes,
                line.deploy_hours, "yes" if line.travel_flagged else "no", reply.version,
                timezone.localtime(reply.updated_at).isoformat(), channels.get(line.channel, ""),
                "yes", "", "", "",
            ]  # fmt: skip
        for reply in bare.iterator(chunk_size=2000):
            yield [*reply_cells(reply), *[""] * TEAM_CELLS, reply.version,
                   timezone.localtime(reply.updated_at).isoformat(),
                   channels.get(reply.channel, ""), "yes", "", "", ""]  # fmt: skip
        for inv in silent.iterator(chunk_size=2000):
            delivery = inv.get_state_display()
            if inv.failure_reason and show_contacts:
                delivery += f": {inv.failure_reason}"
            if inv.revoked_at:
                delivery += " (link withdrawn)"
            yield [
                poll.pk, poll.title, inv.agency.code, inv.agency.name, inv.agency.region.name,
                "", "", "", "", "",
                "", *[""] * TEAM_CELLS, "", "", "", "no",
                inv.contact.name if show_contacts else "",
                inv.email if show_contacts else "", delivery,
            ]  # fmt: skip

    return _csv_download(rows(), f"poll-{poll.pk}-replies")


def _csv_download(rows, name: str) -> StreamingHttpResponse:
    """Rows streamed as a CSV attachment named `name` and the local time, so a large poll
    starts downloading at once."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([_cell(v) for v in row]) for row in rows),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def _changes_text(changes: dict) -> str:
    """{"North SRT: officers": [8, 10]} as "North SRT: officers: 8 → 10"."""
    return "; ".join(
        f"{name}: {value[0]} → {value[1]}"
        if isinstance(value, list) and len(value) == 2
        else f"{name}: {value}"
        for name, value in changes.items()
    )


HISTORY_COLUMNS = ["poll_id", "poll", "agency_code", "agency", "version", "saved_at", "by",
                   "via", "decision", "officers", "changes"]  # fmt: skip


@require_GET
@permissions.require(permissions.can_view_polls)
def poll_dashboard_history_csv(request, poll_id: int):
    """Every saved version of every answer, oldest first: who saved it (their address for those
    who may see contact details), when, through what, and what changed."""
    poll = _poll(poll_id)
    show_contacts = permissions.can_view_contacts(request.user)
    decisions = dict(Reply.Decision.choices)
    versions = (
        ReplyVersion.objects.filter(poll=poll)
        .select_related("reply__agency")
        .order_by("created_at", "pk")
    )

    def rows():
        yield HISTORY_COLUMNS
        for v in versions.iterator(chunk_size=2000):
            changes = _changes_text(v.changes or {})
            yield [
                poll.pk, poll.title, v.reply.agency.code, v.reply.agency.name, v.number,
                timezone.localtime(v.created_at).isoformat(),
                v.author if show_contacts else v.author_name,
                v.get_channel_display(),
                decisions.get(v.data.get("decision"), v.data.get("decision", "")),
                v.data.get("officers", ""), changes,
            ]  # fmt: skip

    return _csv_download(rows(), f"poll-{poll.pk}-history")


@require_GET
@permissions.require(permissions.can_view_polls)
def overview(request):
    """Open polls with their progress, and standing readiness across the registry."""
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    if days not in figures.STANDING_WINDOWS:
        days = 30
    standing = figures.standing_readiness(days=days)
    charts.bar_widths(standing["by_region"], ("available", "conditional"))
    charts.bar_widths(standing["by_type"], ("available", "conditional"))
    context = {
        "polls": figures.with_officers_in_window(figures.open_polls()),
        "standing": standing,
        "days": days,
        "windows": figures.STANDING_WINDOWS,
    }
    return render(request, "dashboards/overview.html", context)
