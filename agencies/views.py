from pathlib import Path

from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from readiness import permissions

from . import selectors, services
from .forms import AgencyFilterForm, RegistryImportForm
from .importer import COLUMN_HELP, read_csv_text
from .models import Agency

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
