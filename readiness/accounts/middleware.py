"""Two-factor policy: a signed-in person whose role requires two-factor reaches nothing but its
set-up (and signing out) until it is on. It decides access only; it must not change accounts."""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve

from readiness import permissions

# What a user who still has to set up two-factor authentication may reach: setting it up, the
# password step allauth asks for first, and signing out.
MFA_SETUP_VIEWS = {"account_logout", "account_reauthenticate", "invitation-accept", "healthz"}


def _allowed_before_mfa(request) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return True  # a 404 page shows nothing
    return match.url_name in MFA_SETUP_VIEWS or (match.url_name or "").startswith("mfa_")


class RequireMFAMiddleware:
    """Send users whose role requires two-factor authentication to set it up first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and permissions.mfa_required(user)
            and not _allowed_before_mfa(request)
            and not permissions.mfa_enabled(user)
        ):
            if request.path.startswith("/api/"):  # a program cannot follow a set-up page
                from readiness.api.errors import error_body

                detail = "Your role requires two-factor authentication: set it up in the app first."
                return JsonResponse(error_body(403, "mfa_required", detail), status=403)
            messages.info(
                request,
                "Your role requires two-factor authentication. Set it up to continue: scan the "
                "code with an authenticator app and enter the code it shows.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)
