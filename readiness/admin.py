from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import FieldDoesNotExist, PermissionDenied

from . import audit, permissions
from .models import User


def _field_values(obj, names) -> dict:
    """Current values of the named model fields (no passwords, no many-to-many)."""
    values = {}
    for name in names:
        try:
            field = obj._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.many_to_many or name == "password":
            continue
        values[name] = getattr(obj, name)
    return values


def _all_fields(obj) -> list[str]:
    return [f.name for f in obj._meta.concrete_fields if f.name not in ("id", "password")]


class CoordinatorOnlyAdminMixin:
    """The admin is for coordinators (and superusers) with admin access, whatever their groups.

    Every change made through it is recorded in the audit trail with before and after values.
    """

    def save_model(self, request, obj, form, change):
        before = {}
        if change:
            old = type(obj)._default_manager.get(pk=obj.pk)
            before = _field_values(old, form.changed_data)
        super().save_model(request, obj, form, change)
        names = form.changed_data if change else _all_fields(obj)
        delta = audit.diff(before, _field_values(obj, names))
        if delta or not change:
            action = "update" if change else "create"
            audit.record(
                f"{obj._meta.model_name}.{action}", request=request, obj=obj, changes=delta
            )

    def delete_model(self, request, obj):
        audit.record(
            f"{obj._meta.model_name}.delete",
            request=request,
            obj=obj,
            changes=audit.diff(_field_values(obj, _all_fields(obj)), {}),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request, form, formset, change):
        before = {}
        for inline_form in formset.initial_forms:
            if inline_form.has_changed() and inline_form.instance.pk:
                old = type(inline_form.instance)._default_manager.filter(pk=inline_form.instance.pk)
                before.update({o.pk: _field_values(o, _all_fields(o)) for o in old})
        # Deleting clears each object's pk: take the events' ids and values first.
        deletions = [
            audit.event(
                f"{f.instance._meta.model_name}.delete",
                request=request,
                obj=f.instance,
                changes=audit.diff(before.get(f.instance.pk, {}), {}),
            )
            for f in formset.deleted_forms
            if f.instance.pk
        ]
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit.record(
                f"{obj._meta.model_name}.create",
                request=request,
                obj=obj,
                changes=audit.diff({}, _field_values(obj, _all_fields(obj))),
            )
        for obj, changed in formset.changed_objects:
            audit.record(
                f"{obj._meta.model_name}.update",
                request=request,
                obj=obj,
                changes=audit.diff(before.get(obj.pk, {}), _field_values(obj, changed)),
            )
        audit.record_many(deletions)

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

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # The login address also lives in allauth's EmailAddress rows: change it there.
            fields.append("email")
        if not request.user.is_superuser:
            # Only a superuser hands out admin access or superuser rights.
            fields += ["is_staff", "is_superuser", "groups"]
        return fields

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or permissions.can_edit_person(request.user, obj))

    def has_add_permission(self, request):
        # People are invited from the People page, so they choose their own password.
        return request.user.is_superuser and super().has_add_permission(request)

    def user_change_password(self, request, id, form_url=""):
        # Nobody sets another person's password: they reset it themselves by email.
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate people instead: their actions must stay attributable
