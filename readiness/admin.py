from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from . import permissions
from .models import User


class CoordinatorOnlyAdminMixin:
    """The admin is for coordinators (and superusers) with admin access, whatever their groups."""

    def has_module_permission(self, request):
        return permissions.is_coordinator(request.user) and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "role", "agency")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(CoordinatorOnlyAdminMixin, BaseUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "role", "agency", "is_active", "last_login"]
    list_filter = ["role", "is_active", "is_staff", "agency__region"]
    search_fields = ["email", "full_name", "agency__name"]
    list_select_related = ["agency"]
    autocomplete_fields = ["agency"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["full_name", "role", "agency"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "full_name", "role", "agency", "password1", "password2"],
            },
        )
    ]
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = ["groups"]

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate people instead: their actions must stay attributable
