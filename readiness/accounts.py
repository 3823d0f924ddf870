from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator

from . import permissions


class AccountAdapter(DefaultAccountAdapter):
    """No open sign-up: coordinators invite people (readiness.services.user_invite)."""

    def is_open_for_signup(self, request) -> bool:
        return False


class MFAAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """People whose role requires two-factor cannot switch it off (recovery codes aside)."""
        if authenticator.type == Authenticator.Type.TOTP:
            return not permissions.mfa_required(authenticator.user)
        return True
