"""The SMS provider's webhooks: delivery receipts (status callbacks) and inbound texts (answers,
HELP, STOP, START). Each request must carry
the provider's signature over this very URL and its parameters; anything else is refused (403)
and audited. No session, no CSRF token: the signature is the authentication."""

from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from readiness import audit

from . import delivery, intake
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


@csrf_exempt
@require_POST
def sms_inbound(request):
    """A text to our number: the answer is handled at once, and the reply to the sender goes back
    in the response (TwiML), which the provider texts to them."""
    if not _signed(request):
        return _refused(request, "inbound text")
    message_id = request.POST.get("MessageSid", "")
    if not message_id:
        return HttpResponse("MessageSid is required.", status=400, content_type="text/plain")
    handled = intake.text_received(
        sender=request.POST.get("From", ""),
        body=request.POST.get("Body", ""),
        message_id=message_id,
    )
    twiml = "<Response>"
    if handled.response:
        twiml += f"<Message>{escape(handled.response)}</Message>"
    twiml += "</Response>"
    return HttpResponse(
        '<?xml version="1.0" encoding="UTF-8"?>' + twiml, content_type="application/xml"
    )
