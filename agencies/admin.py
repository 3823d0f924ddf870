from django import forms
from django.contrib import admin
from django.db.models import Count

from readiness.admin import CoordinatorOnlyAdminMixin

from .models import (
    Agency,
    Contact,
    Qualification,
    Region,
    SpecialTeam,
    TeamMembership,
    TeamType,
    TeamTypeLevel,
)


class CoordinatorAdmin(CoordinatorOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(Region)
class RegionAdmin(CoordinatorAdmin):
    list_display = ["name", "agency_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(agency_count=Count("agencies"))

    @admin.display(ordering="agency_count", description="agencies")
    def agency_count(self, obj):
        return obj.agency_count


class ContactInline(CoordinatorOnlyAdminMixin, admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["name", "title", "email", "mobile", "channels", "phone", "role", "user", "active"]
    raw_id_fields = ["user"]


class TeamInline(CoordinatorOnlyAdminMixin, admin.TabularInline):
    model = SpecialTeam
    extra = 0
    fields = ["code", "name", "team_type", "level", "members", "active"]
    show_change_link = True


@admin.register(Agency)
class AgencyAdmin(CoordinatorAdmin):
    # The few columns that tell agencies apart, so a row is one line on a laptop beside the
    # filters; code, city and county are still searched.
    list_display = ["name", "region", "kind", "sworn_officers", "active"]
    list_filter = ["active", "kind", "region", "teams__team_type"]
    search_fields = ["name", "code", "city", "county"]
    list_select_related = ["region"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [TeamInline, ContactInline]

    def get_queryset(self, request):
        # The team-type filter joins teams; distinct keeps one row per agency.
        return super().get_queryset(request).distinct()


class TeamTypeLevelInline(CoordinatorOnlyAdminMixin, admin.TabularInline):
    model = TeamTypeLevel
    extra = 0


@admin.register(TeamType)
class TeamTypeAdmin(CoordinatorAdmin):
    list_display = ["name", "code", "sort_order"]
    search_fields = ["name", "code"]
    inlines = [TeamTypeLevelInline]


@admin.register(TeamTypeLevel)
class TeamTypeLevelAdmin(CoordinatorAdmin):
    list_display = ["team_type", "level", "min_personnel", "description"]
    list_filter = ["team_type"]
    search_fields = ["team_type__name", "description"]
    list_select_related = ["team_type"]


class SpecialTeamForm(forms.ModelForm):
    """The checks the CSV import makes, for teams edited by hand."""

    class Meta:
        model = SpecialTeam
        fields = [
            "code",
            "name",
            "agency",
            "team_type",
            "level",
            "members",
            "commander_name",
            "commander_phone",
            "notes",
            "active",
        ]

    def clean(self):
        data = super().clean()
        team_type, level = data.get("team_type"), data.get("level")
        if team_type and level and not team_type.levels.filter(level=level).exists():
            self.add_error("level", f"{team_type} has no Type {level}.")
        return data


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        rows = [
            f.cleaned_data
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE", False)
        ]
        host = self.instance.agency if self.instance.agency_id else None
        if host and any(row.get("agency") == host for row in rows):
            raise forms.ValidationError(
                "The host agency supplies the rest of the team; it is not also a member agency."
            )
        members = self.instance.members or 0
        contributed = sum(row.get("officers") or 0 for row in rows)
        if contributed > members:
            raise forms.ValidationError(
                f"Member agencies contribute {contributed} officers but the team has {members}."
            )


class MembershipInline(CoordinatorOnlyAdminMixin, admin.TabularInline):
    model = TeamMembership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ["agency"]


@admin.register(SpecialTeam)
class SpecialTeamAdmin(CoordinatorAdmin):
    form = SpecialTeamForm
    list_display = ["name", "code", "agency", "team_type", "level", "members", "active"]
    list_filter = ["active", "team_type", "level", "agency__region"]
    search_fields = ["name", "code", "agency__name", "commander_name"]
    list_select_related = ["agency", "team_type"]
    autocomplete_fields = ["agency"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]


@admin.register(TeamMembership)
class TeamMembershipAdmin(CoordinatorAdmin):
    list_display = ["team", "agency", "officers"]
    list_filter = ["team__team_type"]
    search_fields = ["team__name", "agency__name"]
    list_select_related = ["team", "agency"]
    autocomplete_fields = ["team", "agency"]


@admin.register(Contact)
class ContactAdmin(CoordinatorAdmin):
    list_display = ["name", "title", "agency", "role", "email", "phone", "active"]
    list_filter = ["role", "active", "agency__region", "agency__kind"]
    search_fields = ["name", "email", "agency__name", "title"]
    list_select_related = ["agency"]
    autocomplete_fields = ["agency"]
    raw_id_fields = ["user"]


@admin.register(Qualification)
class QualificationAdmin(CoordinatorAdmin):
    """Qualifications team members can hold (rosters themselves are not in the admin: members'
    names are their agency commander's, see ROSTER_NAMES_TO_COORDINATORS)."""

    list_display = ["name", "code"]
    search_fields = ["name", "code"]
