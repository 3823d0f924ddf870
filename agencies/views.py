from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readiness import permissions

from . import selectors, services, upkeep
from .forms import AgencyFactsForm, AgencyFilterForm, ContactForm, RegistryImportForm, TeamForm
from .importer import COLUMN_HELP, read_csv_text
from .models import Agency, Contact, SpecialTeam

PAGE_SIZE = 50
EXAMPLE_CSV = Path(__file__).parent / "demo" / "registry-example.csv"
MAX_ERRORS_SHOWN = 500


@require_GET
@permissions.require(permissions.can_view_registry)
def agency_list(request):
    form = AgencyFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    agencies = permissions.scope_agencies(
        request.user,
        selectors.agency_list(
            search=filters.get("q", ""),
            region_id=filters["region"].pk if filters.get("region") else None,
            kind=filters.get("kind", ""),
            team_type_id=filters["team_type"].pk if filters.get("team_type") else None,
            include_inactive=filters.get("inactive", False),
            sort=filters.get("sort") or "name",
        ),
    )
    page = Paginator(agencies, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "agencies/agency_list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "can_import": permissions.can_import_registry(request.user),
            "show_verified": permissions.is_coordinator(request.user),
        },
    )


@require_GET
@permissions.require(permissions.can_view_registry)
def agency_detail(request, agency_id: int):
    try:
        agency = selectors.agency_detail(agency_id=agency_id)
    except Agency.DoesNotExist:
        raise Http404("No such agency") from None
    if not permissions.can_view_agency(request.user, agency):
        # 404, not 403: a commander does not learn which other agencies are registered.
        raise Http404("No such agency")
    return render(
        request,
        "agencies/agency_detail.html",
        {
            "agency": agency,
            "link_agencies": permissions.can_view_all_agencies(request.user),
            "show_contacts": permissions.can_view_contacts(request.user, agency),
            "can_edit": permissions.can_edit_agency(request.user, agency),
            "verify_due": upkeep.verification_due(agency),
            "verify_every_days": settings.AGENCY_VERIFY_EVERY_DAYS,
            "changes": (
                upkeep.recent_changes(agency)
                if permissions.can_edit_agency(request.user, agency)
                else []
            ),
        },
    )


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_import_registry)
def registry_import(request):
    result = None
    status = 200
    if request.method == "POST":
        form = RegistryImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                text = read_csv_text(form.cleaned_data["file"].read())
            except ValueError as exc:
                form.add_error("file", str(exc))
            else:
                result = services.registry_import(
                    text=text,
                    dry_run=form.cleaned_data["dry_run"],
                    request=request,
                    source=form.cleaned_data["file"].name,
                )
        if not form.is_valid() or (result and not result.ok):
            status = 422
    else:
        form = RegistryImportForm()
    return render(
        request,
        "agencies/registry_import.html",
        {
            "form": form,
            "result": result,
            "columns": COLUMN_HELP,
            "errors_shown": result.errors[:MAX_ERRORS_SHOWN] if result else [],
            "errors_hidden": max(len(result.errors) - MAX_ERRORS_SHOWN, 0) if result else 0,
        },
        status=status,
    )


@require_GET
@permissions.require(permissions.can_import_registry)
def import_example(request):
    return FileResponse(
        EXAMPLE_CSV.open("rb"),
        as_attachment=True,
        filename="registry-example.csv",
        content_type="text/csv",
    )


# An agency's upkeep: its commander (or a coordinator) keeps teams, contacts and figures current.


def _editable_agency(request, agency_id: int) -> Agency:
    agency = Agency.objects.select_related("region").filter(pk=agency_id).first()
    if agency is None or not permissions.can_view_agency(request.user, agency):
        raise Http404("No such agency")
    if not permissions.can_edit_agency(request.user, agency):
        raise PermissionDenied
    return agency


def _upkeep_form(request, agency, form, *, title: str, intro: str = "", obj=None):
    return render(
        request,
        "agencies/upkeep_form.html",
        {"agency": agency, "form": form, "title": title, "intro": intro, "obj": obj},
        status=422 if form.errors else 200,
    )


def _saved(request, agency, changes: dict, what: str):
    if changes:
        messages.success(
            request, f"{what} saved: {', '.join(k.replace('_', ' ') for k in changes)}."
        )
    else:
        messages.info(request, f"Nothing changed in {what.lower()}.")
    return redirect(agency.get_absolute_url())


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_view_registry)
def agency_edit(request, agency_id: int):
    agency = _editable_agency(request, agency_id)
    before = {f: getattr(agency, f) for f in upkeep.AGENCY_FACTS}
    form = AgencyFactsForm(request.POST if request.method == "POST" else None, instance=agency)
    if request.method == "POST" and form.is_valid():
        try:
            changes = upkeep.agency_facts_save(form.instance, before, request=request)
        except upkeep.UpkeepRefused as exc:
            form.add_error(None, str(exc))
        else:
            return _saved(request, agency, changes, "Staffing and address")
    return _upkeep_form(request, agency, form, title="Staffing and address")


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_view_registry)
def team_edit(request, agency_id: int, team_id: int | None = None):
    agency = _editable_agency(request, agency_id)
    team = get_object_or_404(SpecialTeam, pk=team_id, agency=agency) if team_id else None
    before = {f: getattr(team, f) for f in upkeep.TEAM_FIELDS} if team else {}
    form = TeamForm(
        request.POST if request.method == "POST" else None, instance=team, agency=agency
    )
    if request.method == "POST" and form.is_valid():
        try:
            changes = upkeep.team_save(form.instance, before, request=request)
        except upkeep.UpkeepRefused as exc:
            form.add_error(None, str(exc))
        else:
            return _saved(request, agency, changes, f"Team {form.instance.name}")
    return _upkeep_form(
        request,
        agency,
        form,
        title=f"Edit {team.name}" if team else "Add a team",
        intro="Officers on the team counts every agency's officers together; member agencies' "
        "shares are kept by the registry import.",
        obj=team,
    )


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_view_registry)
def contact_edit(request, agency_id: int, contact_id: int | None = None):
    agency = _editable_agency(request, agency_id)
    contact = get_object_or_404(Contact, pk=contact_id, agency=agency) if contact_id else None
    before = {f: getattr(contact, f) for f in upkeep.CONTACT_FIELDS} if contact else {}
    form = ContactForm(
        request.POST if request.method == "POST" else None, instance=contact, agency=agency
    )
    if request.method == "POST" and form.is_valid():
        try:
            changes = upkeep.contact_save(
                form.instance, before, primary=form.cleaned_data["primary"], request=request
            )
        except upkeep.UpkeepRefused as exc:
            form.add_error(None, str(exc))
        else:
            return _saved(request, agency, changes, f"Contact {form.instance.name}")
    return _upkeep_form(
        request,
        agency,
        form,
        title=f"Edit {contact.name}" if contact else "Add a contact",
        intro="Polls go to the primary contact; alternates are asked when the primary stays "
        "silent. A contact who leaves is made inactive, so past polls still show who was asked.",
        obj=contact,
    )


@require_POST
@permissions.require(permissions.can_view_registry)
def agency_verify(request, agency_id: int):
    agency = _editable_agency(request, agency_id)
    upkeep.agency_verify(agency, request=request)
    messages.success(request, f"Thank you: {agency.name}'s record is confirmed as current.")
    return redirect(agency.get_absolute_url())
