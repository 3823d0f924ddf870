"""Reads of the registry. Each selector owns its joins and annotations; templates never query."""

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from .models import Agency, Contact, SpecialTeam, TeamMembership

AGENCY_ORDERS = {
    "name": ("name",),
    "-sworn": ("-sworn_officers", "name"),
    "-team_officers": ("-team_officers", "name"),
    "region": ("region__name", "name"),
}


def agency_list(
    *,
    search: str = "",
    region_id: int | None = None,
    kind: str = "",
    team_type_id: int | None = None,
    include_inactive: bool = False,
    sort: str = "name",
) -> QuerySet[Agency]:
    """Agencies matching the filters, with their team and officer counts, in one query."""
    qs = Agency.objects.select_related("region")
    if not include_inactive:
        qs = qs.filter(active=True)
    for word in search.split():
        qs = qs.filter(
            Q(name__icontains=word)
            | Q(city__icontains=word)
            | Q(county__icontains=word)
            | Q(code__icontains=word)
        )
    if region_id:
        qs = qs.filter(region_id=region_id)
    if kind:
        qs = qs.filter(kind=kind)
    if team_type_id:
        # A team the agency hosts, or a multi-agency team it contributes to.
        hosted = SpecialTeam.objects.filter(
            agency=OuterRef("pk"), team_type_id=team_type_id, active=True
        )
        member = TeamMembership.objects.filter(
            agency=OuterRef("pk"), team__team_type_id=team_type_id, team__active=True
        )
        qs = qs.filter(Exists(hosted) | Exists(member))
    return qs.annotate(
        team_count=Count("teams", filter=Q(teams__active=True), distinct=True),
        team_officers=Coalesce(Sum("teams__members", filter=Q(teams__active=True)), 0),
    ).order_by(*AGENCY_ORDERS.get(sort, AGENCY_ORDERS["name"]))


def agency_detail(*, agency_id: int) -> Agency:
    """One agency with its hosted teams (and their member agencies), participations, contacts."""
    teams = (
        SpecialTeam.objects.select_related("team_type")
        .annotate(roster_count=Count("roster", filter=Q(roster__active=True)))
        .prefetch_related(
            Prefetch(
                "memberships",
                queryset=TeamMembership.objects.select_related("agency").order_by("agency__name"),
            )
        )
        .order_by("-active", "team_type__sort_order", "level", "name")
    )
    participations = TeamMembership.objects.select_related(
        "team__team_type", "team__agency"
    ).order_by("team__team_type__sort_order", "team__name")
    # "primary" sorts after "alternate", so -role puts the primary contact first.
    contacts = Contact.objects.order_by("-active", "-role", "name")
    return (
        Agency.objects.select_related("region", "verified_by")
        .prefetch_related(
            Prefetch("teams", queryset=teams),
            Prefetch("team_memberships", queryset=participations),
            Prefetch("contacts", queryset=contacts),
        )
        .get(pk=agency_id)
    )
