from . import permissions


def navigation(request) -> dict:
    """What the signed-in person may reach, for the menu (decided by the permissions module)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav": {
            "import_registry": permissions.can_import_registry(user),
            "manage_users": permissions.can_manage_users(user),
            "view_audit": permissions.can_view_audit(user),
            "view_polls": permissions.can_view_polls(user),
            "my_agency": permissions.can_answer_for_agency(user),
            "admin": user.is_staff and permissions.is_coordinator(user),
        }
    }
