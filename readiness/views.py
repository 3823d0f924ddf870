"""The project's own pages: home (each role's landing page), health, the audit trail, and the
error pages (JSON under /api/). People and tokens are in readiness.accounts; dashboards in
readiness.dashboards."""

import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import (
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import permissions
from .forms import AuditFilterForm
from .models import AuditEvent


@require_GET
@login_required
def home(request):
    """Commanders land on the polls their agency must answer, coordinators and officials on the
    readiness overview, anyone else on the registry."""
    if permissions.can_answer_for_agency(request.user):
        return redirect("surveys:my-agency")
    if permissions.can_view_polls(request.user):
        return redirect("dashboard")
    return redirect("agencies:agency-list")


@never_cache
@require_GET
def healthz(request):
    """Liveness for load balancers and compose healthchecks: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


AUDIT_PAGE_SIZE = 100


@require_GET
@permissions.require(permissions.can_view_audit)
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.select_related("actor")
    if form.is_valid():
        data = form.cleaned_data
        if data["action"]:
            events = events.filter(action__startswith=data["action"].strip())
        if data["actor"]:
            events = events.filter(actor_email__icontains=data["actor"].strip())
        if data["target"]:
            target = data["target"].strip()
            events = events.filter(
                Q(object_repr__icontains=target) | Q(object_type=target) | Q(object_id=target)
            )
        tz = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(
                at__gte=datetime.datetime.combine(data["since"], datetime.time.min, tz)
            )
        if data["until"]:
            events = events.filter(
                at__lt=datetime.datetime.combine(
                    data["until"] + datetime.timedelta(days=1), datetime.time.min, tz
                )
            )
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "readiness/audit_log.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


# Errors: JSON under /api/, pages elsewhere -------------------------------------------------------


def _api_error(request, status: int, code: str, detail: str):
    from .api.errors import error_body

    return JsonResponse(error_body(status, code, detail), status=status)


def bad_request(request, exception):
    """A request Django refused before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too
    many fields, a malformed upload): the app's own page, or the API's error body; 413 for a
    body that is too large."""
    too_big = isinstance(exception, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent)
    status = 413 if too_big else 400
    limit_mb = round(settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1_048_576, 1)
    if request.path.startswith("/api/"):
        if too_big:
            detail = f"The request body is larger than {limit_mb} MB or has too many fields."
            return _api_error(request, status, "request_too_large", detail)
        return _api_error(request, status, "bad_request", "The request could not be read.")
    context = {"too_big": too_big, "limit_mb": limit_mb}
    return render(request, "400.html", context, status=status)


def not_found(request, exception):
    if request.path.startswith("/api/"):
        return _api_error(request, 404, "not_found", "There is no such API endpoint.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return _api_error(request, 500, "server_error", "Something went wrong on our side.")
    return defaults.server_error(request)
