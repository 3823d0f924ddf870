from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """No open sign-up: coordinators invite people (readiness.services.user_invite)."""

    def is_open_for_signup(self, request) -> bool:
        return False
