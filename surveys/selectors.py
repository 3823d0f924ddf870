"""Reads for polls: who a poll would ask."""

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from agencies.models import Agency, Contact, SpecialTeam, TeamMembership

from .geo import distance_km_expression
from .models import Poll


def _team_filter(type_ids: list[int], levels: list[tuple[int, int]], prefix: str = "") -> Q:
    """Active teams of the targeted types and levels (any active team when none is targeted)."""
    condition = Q(**{f"{prefix}active": True})
    if type_ids or levels:
        wanted = Q(**{f"{prefix}team_type_id__in": type_ids}) if type_ids else Q(pk__in=[])
        for team_type_id, level in levels:
            wanted |= Q(**{f"{prefix}team_type_id": team_type_id, f"{prefix}level": level})
        condition &= wanted
    return condition


def poll_recipients(*, poll: Poll) -> QuerySet[Agency]:
    """Active agencies the poll targets, with distance, their targeted teams and contacts.

    An agency matches when it meets every filter that is set (regions, kinds, radius, team
    types/levels: a team it hosts or contributes officers to), or when it is hand-picked.
    `primary_contact` is annotated; agencies without a usable contact are still listed, so the
    preview can warn about them.
    """
    type_ids = list(poll.target_team_types.values_list("pk", flat=True))
    levels = list(poll.target_levels.values_list("team_type_id", "level"))
    regions = list(poll.target_regions.values_list("pk", flat=True))
    picked = list(poll.target_agencies.values_list("pk", flat=True))
    qs = Agency.objects.filter(active=True).select_related("region")
    qs = qs.annotate(distance_km=distance_km_expression(
        poll.destination_latitude, poll.destination_longitude))  # fmt: skip
    matched = Q()
    if regions:
        matched &= Q(region_id__in=regions)
    if poll.target_kinds:
        matched &= Q(kind__in=poll.target_kinds)
    if poll.target_radius_km is not None:
        matched &= Q(distance_km__lte=poll.target_radius_km)
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
