"""Polls, invitations and answers in the admin, for coordinators: to look things up, read-only.
Every write goes through the flows (compose, delivery, chasing, replies) and their pages or API,
which keep versions, claims, confirmations and the audit trail; the admin must not bypass them.
Links (token hashes) and delivery claims are never shown."""

from django.contrib import admin

from readiness.admin import CoordinatorOnlyAdminMixin

from .models import Invitation, Poll, Reply, ReplyLine, ReplyVersion

HIDDEN = {"token_hash", "claim", "claimed_by"}


class ReadOnlyAdmin(CoordinatorOnlyAdminMixin, admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in HIDDEN]

    def get_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields if f.name not in HIDDEN | {"id"}]
        return fields + [f.name for f in self.model._meta.many_to_many]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(CoordinatorOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Poll)
class PollAdmin(ReadOnlyAdmin):
    list_display = ["title", "purpose", "state", "destination_name", "deadline", "sent_at",
                    "created_by"]  # fmt: skip
    list_filter = ["state", "purpose", "situation"]
    search_fields = ["title", "destination_name", "requesting_person"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]


class ReplyLineInline(ReadOnlyInline):
    model = ReplyLine
    fields = ["team", "officers", "vehicles", "depart_minutes", "travel_minutes",
              "arrival_minutes", "deploy_hours", "travel_flagged"]  # fmt: skip
    readonly_fields = fields
    show_change_link = False


class ReplyVersionInline(ReadOnlyInline):
    model = ReplyVersion
    fields = ["number", "created_at", "author", "changes"]
    readonly_fields = fields
    show_change_link = False


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["agency", "poll", "channel", "email", "mobile", "state", "receipt", "attempts",
                    "sent_at", "replied_at", "is_escalation"]  # fmt: skip
    list_filter = ["channel", "state", "receipt", "is_escalation"]
    search_fields = ["agency__name", "email", "mobile", "poll__title"]
    list_select_related = ["agency", "poll"]


@admin.register(Reply)
class ReplyAdmin(ReadOnlyAdmin):
    list_display = ["agency", "poll", "decision", "officers", "version", "updated_at"]
    list_filter = ["decision"]
    search_fields = ["agency__name", "poll__title", "authorised_by_name"]
    list_select_related = ["agency", "poll"]
    inlines = [ReplyLineInline, ReplyVersionInline]
