"""Who may do what. Every view asks here; nothing checks roles ad hoc.

Predicates return a bool; decorators wrap views. Anonymous users are sent to sign in by
login_required; signed-in users without the right get 403.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from .models import User


def is_coordinator(user) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_superuser or user.role == User.Role.COORDINATOR)
    )


def can_view_registry(user) -> bool:
    """Every signed-in person (coordinator, commander, official) may read the registry."""
    return bool(user.is_authenticated and user.is_active)


def can_import_registry(user) -> bool:
    return is_coordinator(user)


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
