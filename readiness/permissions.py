"""Who may do what. Every view asks here; nothing checks roles ad hoc.

Predicates return a bool; decorators wrap views. Anonymous users are sent to sign in by
login_required; signed-in users without the right get 403.
"""

from collections.abc import Callable
from functools import cache, wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from .models import User


def is_coordinator(user) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_superuser or user.role == User.Role.COORDINATOR)
    )


def mfa_required(user) -> bool:
    """Whether the user's role must use two-factor authentication (MFA_REQUIRED_ROLES)."""
    role = User.Role.COORDINATOR if user.is_superuser else user.role
    return role in settings.MFA_REQUIRED_ROLES


def mfa_enabled(user) -> bool:
    """Whether the user has an authenticator app set up (asked on every request of a role
    that requires it: by a query compiled once)."""
    return _totp_lookup().first(user.pk) is not None


@cache
def _totp_lookup():
    from allauth.mfa.models import Authenticator

    from readiness.db import Lookup

    return Lookup(
        Authenticator,
        lambda user_id: Authenticator.objects.filter(
            user_id=user_id, type=Authenticator.Type.TOTP
        ).only("id")[:1],
        kinds=(int,),
    )


def can_manage_users(user) -> bool:
    return is_coordinator(user)


def can_edit_person(user, person) -> bool:
    """Coordinators manage people, but only a superuser may change a superuser."""
    return can_manage_users(user) and (user.is_superuser or not person.is_superuser)


def can_manage_polls(user) -> bool:
    return is_coordinator(user)


def can_view_polls(user) -> bool:
    return can_view_all_agencies(user)  # coordinators and officials


def can_answer_for_agency(user) -> bool:
    """Signed-in commanders answer polls for their own agency (the emailed link needs none)."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user.role == User.Role.COMMANDER
        and user.agency_id
    )


def can_view_audit(user) -> bool:
    return is_coordinator(user)


def can_view_registry(user) -> bool:
    """Every signed-in person may open the registry; commanders see only their own agency."""
    return bool(user.is_authenticated and user.is_active)


def can_view_all_agencies(user) -> bool:
    return can_view_registry(user) and (is_coordinator(user) or user.role == User.Role.OFFICIAL)


def scope_agencies(user, agencies):
    """The agencies of `agencies` that the user may see: all, or a commander's own."""
    if can_view_all_agencies(user):
        return agencies
    if user.is_authenticated and user.role == User.Role.COMMANDER and user.agency_id:
        return agencies.filter(pk=user.agency_id)
    return agencies.none()


def can_view_agency(user, agency) -> bool:
    return can_view_all_agencies(user) or (
        can_view_registry(user) and user.role == User.Role.COMMANDER and user.agency_id == agency.pk
    )


def can_edit_agency(user, agency) -> bool:
    """An agency's teams, contacts and staffing are kept by its own commander, and by
    coordinators for any agency."""
    return is_coordinator(user) or bool(
        can_answer_for_agency(user) and user.agency_id == getattr(agency, "pk", agency)
    )


def can_see_roster(user, agency) -> bool:
    """Team members' names and numbers: their agency's commander, and coordinators only where
    ROSTER_NAMES_TO_COORDINATORS allows. Everyone else who may see the agency sees counts."""
    agency_id = getattr(agency, "pk", agency)
    if is_coordinator(user):
        return settings.ROSTER_NAMES_TO_COORDINATORS
    return bool(agency_id and can_answer_for_agency(user) and user.agency_id == agency_id)


def can_see_any_roster(user) -> bool:
    return (is_coordinator(user) and settings.ROSTER_NAMES_TO_COORDINATORS) or (
        can_answer_for_agency(user)
    )


def can_keep_agencies(user) -> bool:
    """May edit some agency: coordinators, and commanders (their own, checked per object)."""
    return is_coordinator(user) or can_answer_for_agency(user)


def can_import_registry(user) -> bool:
    return is_coordinator(user)


def can_view_contacts(user, agency=None) -> bool:
    """Contact details (names, emails and phones of the people asked) are for coordinators, and
    for a commander about their own agency. One rule for every page, list and endpoint:
    officials, and everyone about other agencies, see that a contact is on file, not who."""
    if is_coordinator(user):
        return True
    agency_id = getattr(agency, "pk", agency)
    return bool(agency_id and can_answer_for_agency(user) and user.agency_id == agency_id)


def can_manage_api_tokens(user) -> bool:
    return is_coordinator(user)


def can_view_readiness(user) -> bool:
    """The dashboards' figures, on the pages and through the API."""
    return can_view_polls(user)


def scope_to_agency(user, queryset, field: str = "agency"):
    """Rows of `queryset` the user may see by their agency `field`: all for coordinators and
    officials, a commander's own agency's, none for anyone else."""
    if can_view_all_agencies(user):
        return queryset
    if can_answer_for_agency(user):
        return queryset.filter(**{f"{field}_id": user.agency_id})
    return queryset.none()


def require(predicate: Callable[..., bool]) -> Callable:
    """Decorate a view: sign-in first, then 403 unless predicate(user) holds."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not predicate(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
