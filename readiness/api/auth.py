"""Who is asking the API (a session or a token) and what they may do: the same predicates as
the pages, from readiness.permissions. Kept apart from readiness.api.errors: DRF imports these
classes from its settings while its views module loads, so this module must not import DRF's
views."""

from collections.abc import Callable

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from readiness import ratelimit
from readiness.accounts import services

# Authentication ---------------------------------------------------------------------------------


class TokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` with a key a coordinator issued on the API tokens page.

    Wrong keys count against the client's address, like unknown reply links: guessing is rate
    limited."""

    keywords = (b"bearer", b"token")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the token as: Authorization: Bearer <key>.")
        limit, window = settings.API_TOKEN_RATE_LIMIT, settings.API_TOKEN_RATE_WINDOW
        if ratelimit.exceeded(request, "api-token", limit=limit, window=window):
            raise exceptions.Throttled(wait=window)
        token = services.api_token_authenticate(parts[1].decode(errors="replace"))
        if token is None:
            ratelimit.hit(request, "api-token", window=window)
            raise exceptions.AuthenticationFailed("This token is unknown, expired or revoked.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


# Permissions ------------------------------------------------------------------------------------


class RolePermission(BasePermission):
    """The view's rule for this action, a predicate from readiness.permissions.

    Views set `rules`: a dict from action name ("list", "create", "send", ...) to a predicate;
    "read" covers every safe method and "write" every other one, unless an action has its own.
    Objects are scoped in the views' querysets with the same module's scope_* functions.
    """

    def has_permission(self, request, view) -> bool:
        return rule_for(view, request.method)(request.user)


def rule_for(view, method: str) -> Callable[..., bool]:
    rules = view.rules
    action = getattr(view, "action", None)
    if action in rules:
        return rules[action]
    return rules["read"] if method in SAFE_METHODS else rules.get("write", _nobody)


def _nobody(user) -> bool:
    return False
