from django.contrib import messages
from django.shortcuts import redirect

from . import permissions

# Pages a user who still has to set up two-factor authentication may reach.
MFA_SETUP_PREFIXES = ("/accounts/", "/static/", "/healthz")


class RequireMFAMiddleware:
    """Send users whose role requires two-factor authentication to set it up first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(MFA_SETUP_PREFIXES)
            and permissions.mfa_required(user)
            and not permissions.mfa_enabled(user)
        ):
            messages.info(
                request,
                "Your role requires two-factor authentication. Set it up to continue: scan the "
                "code with an authenticator app and enter the code it shows.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)
