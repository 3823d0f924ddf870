"""Writes about people: invitations, activation. Every one leaves an audit record."""

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from . import audit
from .models import User


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    """Single use (the token covers the password hash, which setting one changes) and expiring
    after PASSWORD_RESET_TIMEOUT (INVITATION_MAX_AGE)."""

    key_salt = "readiness.services.InvitationTokenGenerator"


invitation_tokens = InvitationTokenGenerator()


def user_fields(user: User) -> dict:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "agency": user.agency,
        "is_active": user.is_active,
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
        "days": round(settings.PASSWORD_RESET_TIMEOUT / 86400),
    }
    # Sent after commit: a rolled-back invitation emails nobody.
    transaction.on_commit(
        lambda: send_mail(
            subject="[Readiness] You are invited to Readiness",
            message=render_to_string("readiness/email/invitation.txt", context),
            from_email=None,
            recipient_list=[user.email],
        )
    )


@transaction.atomic
def user_accept_invitation(*, request, user: User, password: str) -> None:
    user.set_password(password)
    user.save(update_fields=["password"])
    # The link reached this address: it is verified.
    EmailAddress.objects.update_or_create(
        user=user, email__iexact=user.email,
        defaults={"email": user.email, "verified": True, "primary": True},
    )  # fmt: skip
    audit.record("user.invitation_accepted", request=request, actor=user, obj=user)


@transaction.atomic
def user_update(*, request, user: User, **changes) -> User:
    """Change role, agency, name or active flag, recording before and after."""
    user = User.objects.select_for_update().get(pk=user.pk)
    before = user_fields(user)
    for name, value in changes.items():
        setattr(user, name, value)
    if user.role != User.Role.COMMANDER:
        user.agency = None
    user.full_clean(exclude=["password"])
    user.save(update_fields=[*changes, "agency"])
    delta = audit.diff(before, user_fields(user))
    if delta:
        action = "user.update"
        if list(delta) == ["is_active"]:
            action = "user.activate" if user.is_active else "user.deactivate"
        audit.record(action, request=request, obj=user, changes=delta)
    return user
