"""Messages that need a person: texts (and email replies) that could not be understood or
matched to an open invitation. Nothing that came in is lost: a coordinator sees each beside its
poll and agency, opens the agency's answer, and marks it handled. Coordinators only."""

import hmac

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from readiness import audit, permissions

from . import intake, selectors
from .models import InboundMessage


@require_GET
@permissions.require(permissions.can_manage_polls)
def inbound_list(request):
    show_all = request.GET.get("all") == "1"
    waiting = selectors.inbound_needing_attention()
    rows = InboundMessage.objects.all() if show_all else waiting
    rows = rows.select_related("invitation__poll", "invitation__agency", "version").order_by(
        "-received_at", "-pk"
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "surveys/inbound_list.html",
        {
            "page": page,
            "show_all": show_all,
            "waiting": selectors.inbound_needing_attention().count(),
        },
    )


@require_POST
@permissions.require(permissions.can_manage_polls)
def inbound_handled(request, message_id: int):
    message = get_object_or_404(InboundMessage, pk=message_id)
    if InboundMessage.objects.filter(pk=message.pk, handled_at__isnull=True).update(
        handled_at=timezone.now()
    ):
        audit.record("inbound.handled", request=request, obj=message,
                     object_repr=f"{message.channel} from {message.sender}")  # fmt: skip
        messages.success(request, "Marked as handled.")
    return redirect("surveys:inbound")


@csrf_exempt
@require_POST
def email_inbound(request):
    """For providers that receive email and POST it: the raw message (RFC 822) as the body, or
    as the form field `email`, with the shared secret in X-Inbound-Secret. Handled like a
    message from the reply mailbox."""
    secret = settings.INBOUND_EMAIL_SECRET
    given = request.headers.get("X-Inbound-Secret", "")
    if not secret or not hmac.compare_digest(secret, given):
        audit.record("email.refused", request=request, object_type="webhook",
                     object_repr="inbound email", changes={"secret": bool(given)})  # fmt: skip
        return HttpResponse("Secret missing or wrong.", status=403, content_type="text/plain")
    raw = request.POST["email"].encode() if "email" in request.POST else request.body
    if not raw.strip():
        return HttpResponse("No message.", status=400, content_type="text/plain")
    handled = intake.email_received(raw)
    return HttpResponse(status=202 if handled else 200)


@require_POST
@permissions.require(permissions.can_manage_polls)
def inbound_open_form(request, message_id: int):
    """Open the agency's answer form from a message that needs a person (to enter what the
    sender meant, say after a call): a fresh link of that invitation, audited. The answer is
    then saved under the coordinator's name."""
    message = get_object_or_404(
        InboundMessage.objects.select_related("invitation__agency"), pk=message_id
    )
    if message.invitation is None:
        raise Http404("This message was not matched to an invitation.")
    audit.record("inbound.open_form", request=request, obj=message.invitation,
                 object_repr=f"{message.invitation.agency} (message {message.pk})")  # fmt: skip
    return redirect(intake.form_link(message.invitation))
