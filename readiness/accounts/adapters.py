"""allauth's hooks: no open sign-up, two-factor that required roles cannot switch off, and
rate-limited sign-ins recorded in the audit trail."""

import hashlib

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.core.exceptions import ValidationError

from readiness import audit, permissions
from readiness.ratelimit import client_ip


class AccountAdapter(DefaultAccountAdapter):
    """No open sign-up: coordinators invite people (readiness.accounts.services.user_invite)."""

    def is_open_for_signup(self, request) -> bool:
        return False

    def pre_authenticate(self, request, **credentials) -> None:
        """A sign-in refused by the rate limit never reaches authenticate(), so Django sends no
        "failed" signal: audit the refusal here (the address tried, never the password)."""
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            tried = str(credentials.get("email") or credentials.get("username") or "")[:254]
            # Once per address tried and client per minute: a flood of refused attempts must
            # not flood the append-only trail.
            key = f"audit:rate-limited:{client_ip(request)}:{tried.lower()}"
            if cache.add(hashlib.sha256(key.encode()).hexdigest(), 1, timeout=60):
                audit.record("auth.sign_in_rate_limited", request=request, actor_email=tried)
            raise


class MFAAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """People whose role requires two-factor cannot switch it off (recovery codes aside)."""
        if authenticator.type == Authenticator.Type.TOTP:
            return not permissions.mfa_required(authenticator.user)
        return True
