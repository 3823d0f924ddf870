"""A team's roster: its people, their qualifications and expiry dates. Names and numbers for
the team's agency's commander (and coordinators where the setting allows); counts for everyone
else who may see the agency."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from readiness import permissions

from . import rosters
from .forms import MemberForm, RosterImportForm
from .importer import read_csv_text
from .models import SpecialTeam, TeamMember


def _team(request, agency_id: int, team_id: int) -> SpecialTeam:
    team = get_object_or_404(
        SpecialTeam.objects.select_related("agency", "team_type"), pk=team_id, agency_id=agency_id
    )
    if not permissions.can_view_agency(request.user, team.agency):
        raise Http404("No such agency")
    return team


def _keeper(request, team: SpecialTeam) -> None:
    if not permissions.can_see_roster(request.user, team.agency):
        raise PermissionDenied


@require_GET
@permissions.require(permissions.can_view_registry)
def roster(request, agency_id: int, team_id: int):
    team = _team(request, agency_id, team_id)
    names = permissions.can_see_roster(request.user, team.agency)
    today = timezone.localdate()
    counts = team.roster.aggregate(
        members=Count("pk", filter=Q(active=True)),
        leaders=Count("pk", filter=Q(active=True, is_leader=True)),
    )
    context = {"team": team, "agency": team.agency, "names": names, "counts": counts}
    if names:
        context["members"] = (
            team.roster.select_related("agency")
            .prefetch_related("qualifications__qualification")
            .order_by("-active", "-is_leader", "name")
        )
        context["today"] = today
    else:
        context["qualified"] = (
            TeamMember.objects.filter(team=team, active=True)
            .values("qualifications__qualification__name")
            .annotate(
                current=Count(
                    "pk",
                    filter=Q(qualifications__expires_on__isnull=True)
                    | Q(qualifications__expires_on__gte=today),
                )
            )
            .exclude(qualifications__qualification__name=None)
            .order_by("qualifications__qualification__name")
        )
    return render(request, "agencies/roster.html", context)


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_view_registry)
def member_edit(request, agency_id: int, team_id: int, member_id: int | None = None):
    team = _team(request, agency_id, team_id)
    _keeper(request, team)
    member = get_object_or_404(TeamMember, pk=member_id, team=team) if member_id else None
    before = {f: getattr(member, f) for f in rosters.MEMBER_FIELDS} if member else {}
    form = MemberForm(
        request.POST if request.method == "POST" else None,
        instance=member,
        team=team,
        agencies=rosters.team_agencies(team),
    )
    if request.method == "POST" and form.is_valid():
        rosters.member_save(
            form.instance, before, form.cleaned_data["qualifications"], request=request
        )
        messages.success(request, f"{form.instance.name} saved on {team.name}.")
        return redirect("agencies:roster", agency_id, team.pk)
    return render(
        request,
        "agencies/upkeep_form.html",
        {"agency": team.agency, "form": form,
         "title": f"Edit {member.name}" if member else f"Add a member to {team.name}",
         "intro": "Members are people to ask, not logins. Their names and numbers are seen by "
         "their agency's commander only."},
        status=422 if form.errors else 200,
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_view_registry)
def roster_import(request, agency_id: int, team_id: int):
    team = _team(request, agency_id, team_id)
    _keeper(request, team)
    result, status = None, 200
    form = RosterImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                text = read_csv_text(form.cleaned_data["file"].read())
            except ValueError as exc:
                form.add_error("file", str(exc))
            else:
                result = rosters.roster_import(
                    team=team, text=text, request=request, dry_run=form.cleaned_data["dry_run"]
                )
        if not form.is_valid() or (result and not result.ok):
            status = 422
        elif result and not result.dry_run:
            messages.success(
                request, f"Roster imported: {result.created} added, {result.updated} updated, "
                f"{result.unchanged} unchanged.",
            )  # fmt: skip
            return redirect("agencies:roster", agency_id, team.pk)
    return render(
        request,
        "agencies/roster_import.html",
        {"team": team, "agency": team.agency, "form": form, "result": result},
        status=status,
    )
