"""Writes about people: invitations, activation. Every one leaves an audit record."""

import hashlib
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from readiness import audit
from readiness.models import ApiToken, User


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    """Single use (the token covers the password hash and last sign-in, which accepting changes)
    and expiring after INVITATION_MAX_AGE, not the password-reset timeout."""

    key_salt = "readiness.services.InvitationTokenGenerator"

    def check_token(self, user, token) -> bool:
        try:
            timestamp = base36_to_int(token.split("-")[0])
        except (ValueError, AttributeError):
            return False
        if self._num_seconds(self._now()) - timestamp > settings.INVITATION_MAX_AGE:
            return False
        for secret in [self.secret, *self.secret_fallbacks]:
            expected = self._make_token_with_timestamp(user, timestamp, secret)
            if constant_time_compare(expected, token):
                return True
        return False


invitation_tokens = InvitationTokenGenerator()


class InvitationUsed(Exception):
    pass


def invitation_is_valid(user: User, token: str) -> bool:
    """A link for someone who has never signed in and has no two-factor device yet."""
    from allauth.mfa.models import Authenticator

    return (
        user.is_active
        and user.last_login is None
        and not Authenticator.objects.filter(user=user).exists()
        and invitation_tokens.check_token(user, token)
    )


def user_fields(user: User) -> dict:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "agency": user.agency,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
    }


def invitation_url(*, request, user: User) -> str:
    path = reverse(
        "invitation-accept",
        args=[urlsafe_base64_encode(force_bytes(user.pk)), invitation_tokens.make_token(user)],
    )
    return request.build_absolute_uri(path)


@transaction.atomic
def user_invite(*, request, email: str, full_name: str, role: str, agency=None) -> User:
    """Create an account with no password and email a link to set one."""
    user = User.objects.create_user(
        email=email,
        password=None,
        full_name=full_name,
        role=role,
        agency=agency if role == User.Role.COMMANDER else None,
    )
    # Coordinators also get the Django admin for the registry (still MFA-guarded).
    if role == User.Role.COORDINATOR:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    audit.record(
        "user.invite", request=request, obj=user, changes=audit.diff({}, user_fields(user))
    )
    user_send_invitation(request=request, user=user)
    return user


def user_send_invitation(*, request, user: User) -> None:
    context = {
        "user": user,
        "inviter": request.user,
        "url": invitation_url(request=request, user=user),
        "days": round(settings.INVITATION_MAX_AGE / 86400),
    }
    # Sent after commit: a rolled-back invitation emails nobody.
    transaction.on_commit(
        robust=True,  # an SMTP failure is logged; "resend invitation" tries again
        func=lambda: send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}You are invited to Readiness",
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=None,
            recipient_list=[user.email],
        ),
    )


@transaction.atomic
def user_accept_invitation(*, request, user: User, token: str, password: str) -> User:
    # Lock and check again: two submissions of one link must not both set a password.
    user = User.objects.select_for_update().get(pk=user.pk)
    if not invitation_is_valid(user, token):
        raise InvitationUsed
    user.set_password(password)
    user.save(update_fields=["password"])
    # The link reached this address: it is verified.
    EmailAddress.objects.update_or_create(
        user=user, email__iexact=user.email,
        defaults={"email": user.email, "verified": True, "primary": True},
    )  # fmt: skip
    audit.record("user.invitation_accepted", request=request, actor=user, obj=user)
    return user


@transaction.atomic
def user_update(*, request, user: User, **changes) -> User:
    """Change role, agency, name or active flag, recording before and after."""
    user = User.objects.select_for_update().get(pk=user.pk)
    before = user_fields(user)
    for name, value in changes.items():
        setattr(user, name, value)
    if user.role != User.Role.COMMANDER:
        user.agency = None
    # Admin access follows the role (superusers keep theirs).
    user.is_staff = user.is_superuser or user.role == User.Role.COORDINATOR
    user.full_clean(exclude=["password"])
    user.save(update_fields=[*changes, "agency", "is_staff"])
    delta = audit.diff(before, user_fields(user))
    if delta:
        action = "user.update"
        if list(delta) == ["is_active"]:
            action = "user.activate" if user.is_active else "user.deactivate"
        audit.record(action, request=request, obj=user, changes=delta)
    return user


# API tokens ------------------------------------------------------------------------------------

API_TOKEN_PREFIX = "rdy_"  # noqa: S105 (a marker that says what the key is, not a secret)
API_TOKEN_DOMAIN = "api-tokens.invalid"  # noqa: S105 (service accounts' addresses: never deliverable)


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_token_issue(
    *, request, name: str, role: str, agency=None, expires_at=None
) -> tuple[ApiToken, str]:
    """A new token and its key (shown once; only its hash is kept). The token acts as its own
    service account: that role, that agency for a commander's, no password, no sign-in."""
    key = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(
        email=f"token-{secrets.token_hex(8)}@{API_TOKEN_DOMAIN}",
        full_name=f"API token: {name}"[:150],
        role=role,
        agency=agency if role == User.Role.COMMANDER else None,
    )
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    token = ApiToken.objects.create(
        name=name,
        user=user,
        prefix=key[: len(API_TOKEN_PREFIX) + 6],
        key_hash=api_token_hash(key),
        created_by=request.user,
        expires_at=expires_at,
    )
    audit.record(
        "api_token.issue", request=request, obj=token,
        changes={"role": role, "agency": str(user.agency or ""),
                 "expires_at": expires_at.isoformat() if expires_at else ""},
    )  # fmt: skip
    return token, key


@transaction.atomic
def api_token_revoke(*, request, token: ApiToken) -> bool:
    """Revoke a token at once (its key stops working on the next request); False if it was."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at:
        return False
    token.revoked_at, token.revoked_by = timezone.now(), request.user
    token.save(update_fields=["revoked_at", "revoked_by"])
    User.objects.filter(pk=token.user_id).update(is_active=False)
    audit.record("api_token.revoke", request=request, obj=token)
    return True


def api_token_authenticate(key: str, *, now=None) -> ApiToken | None:
    """The usable token with this key, or None. Records its use at most once a minute."""
    now = now or timezone.now()
    token = (
        ApiToken.objects.select_related("user__agency").filter(key_hash=api_token_hash(key)).first()
    )
    if token is None or not token.usable(now):
        return None
    if token.last_used_at is None or token.last_used_at < now - timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
