"""People management (invite, edit, resend, accept an invitation) and API tokens' pages,
for coordinators; the invitation link for the person invited."""

import datetime

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import (
    PermissionDenied,
)
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readiness import audit, permissions
from readiness.models import ApiToken, User

from . import services
from .forms import ApiTokenForm, InvitationPasswordForm, PersonForm


@require_GET
@permissions.require(permissions.can_manage_users)
def people(request):
    users = (
        User.objects.filter(api_token__isnull=True)  # tokens' service accounts: API tokens page
        .select_related("agency")
        .annotate(
            has_mfa=Exists(
                Authenticator.objects.filter(user=OuterRef("pk"), type=Authenticator.Type.TOTP)
            )
        )
        .order_by("-is_active", "role", "email")
    )
    return render(request, "accounts/people.html", {"users": users})


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_users)
def person_invite(request):
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = services.user_invite(
            request=request,
            email=data["email"],
            full_name=data["full_name"],
            role=data["role"],
            agency=data["agency"],
        )
        messages.success(request, f"Invitation sent to {user.email}.")
        return redirect("people")
    status = 422 if request.method == "POST" else 200
    return render(request, "accounts/person_form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_users)
def person_edit(request, user_id: int):
    person = get_object_or_404(User.objects.filter(api_token__isnull=True), pk=user_id)
    if not permissions.can_edit_person(request.user, person):
        raise PermissionDenied
    form = PersonForm(request.POST or None, instance=User.objects.get(pk=person.pk))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if person == request.user and (
            not data["is_active"] or data["role"] != User.Role.COORDINATOR
        ):
            form.add_error(None, "You cannot deactivate yourself or give up your own role.")
        else:
            services.user_update(
                request=request,
                user=person,
                full_name=data["full_name"],
                role=data["role"],
                agency=data["agency"],
                is_active=data["is_active"],
            )
            messages.success(request, f"{person.email} updated.")
            return redirect("people")
    status = 422 if request.method == "POST" else 200
    return render(
        request, "accounts/person_form.html", {"form": form, "person": person}, status=status
    )


@require_http_methods(["POST"])
@permissions.require(permissions.can_manage_users)
def person_resend(request, user_id: int):
    person = get_object_or_404(
        User.objects.filter(api_token__isnull=True), pk=user_id, is_active=True
    )
    if not permissions.can_edit_person(request.user, person):
        raise PermissionDenied
    if person.has_usable_password():
        messages.error(request, f"{person.email} has already set a password.")
    else:
        services.user_send_invitation(request=request, user=person)
        audit.record("user.invitation_resent", request=request, obj=person)
        messages.success(request, f"Invitation sent again to {person.email}.")
    return redirect("people")


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request, uidb64: str, token: str):
    try:
        user = User.objects.get(pk=force_str(urlsafe_base64_decode(uidb64)), is_active=True)
    except (User.DoesNotExist, ValueError, TypeError, OverflowError):
        user = None
    if user is None or not services.invitation_is_valid(user, token):
        return render(request, "accounts/invitation_invalid.html", status=400)
    form = InvitationPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_accept_invitation(
                request=request, user=user, token=token, password=form.cleaned_data["new_password1"]
            )
        except services.InvitationUsed:
            return render(request, "accounts/invitation_invalid.html", status=400)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to Readiness. Your password is set.")
        return redirect("home")
    return render(request, "accounts/invitation_accept.html", {"form": form, "person": user})


# API tokens -------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_api_tokens)
def api_tokens(request):
    """Issue tokens for integrations and revoke them. A new key is shown once, on this page."""
    form = ApiTokenForm(request.POST or None)
    key, status = None, 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            days = data["expires_in"]
            expires_at = timezone.now() + datetime.timedelta(days=int(days)) if days else None
            _, key = services.api_token_issue(
                request=request, name=data["name"], role=data["role"], agency=data["agency"],
                expires_at=expires_at,
            )  # fmt: skip
            form = ApiTokenForm()
        else:
            status = 422
    tokens = ApiToken.objects.select_related("user__agency", "created_by", "revoked_by")
    context = {"form": form, "key": key, "tokens": tokens, "now": timezone.now()}
    response = render(request, "accounts/api_tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may show a key
    return response


@require_POST
@permissions.require(permissions.can_manage_api_tokens)
def api_token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id)
    if services.api_token_revoke(request=request, token=token):
        messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("api-tokens")
