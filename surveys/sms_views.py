"""The SMS provider's webhooks: delivery receipts (status callbacks). Each request must carry
the provider's signature over this very URL and its parameters; anything else is refused (403)
and audited. No session, no CSRF token: the signature is the authentication."""

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from readiness import audit

from . import delivery
from .channels import providers


def _signed(request) -> bool:
    url = settings.SITE_URL + request.get_full_path()
    params = {k: request.POST.get(k, "") for k in request.POST}
    return providers.signature_valid(url, params, request.headers.get("X-Twilio-Signature", ""))


def _refused(request, what: str) -> HttpResponse:
    audit.record(
        "sms.refused",
        request=request,
        object_type="webhook",
        object_repr=what,
        changes={"signature": bool(request.headers.get("X-Twilio-Signature"))},
    )
    return HttpResponse("Signature missing or invalid.", status=403, content_type="text/plain")


@csrf_exempt
@require_POST
def sms_status(request):
    if not _signed(request):
        return _refused(request, "status callback")
    delivery.receipt_record(
        provider_id=request.POST.get("MessageSid", ""),
        status=request.POST.get("MessageStatus", ""),
        error=request.POST.get("ErrorCode", ""),
    )
    return HttpResponse(status=204)
