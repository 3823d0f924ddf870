import re
from datetime import UTC, datetime, timedelta

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator
from django.utils import timezone

from agencies.models import Agency, Region, TeamType, TeamTypeLevel

from .models import MAX_DEPLOY_HOURS, MAX_MINUTES, Poll, Reply

MESSAGE_TEMPLATE = (
    "For emergency situations, not routine calls for service: would members of your special "
    "teams be willing to respond to critical situations in {destination}, and how quickly could "
    "they get there?\n\n"
    "Please answer for your agency by the deadline, even if the answer is no. Tell us how many "
    "officers could go, how soon they could leave, and any conditions on their response."
)
CUSTOM = "custom"
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> shows and sends


MAX_CHASE_HOURS = 30 * 24  # reminders and escalation: a poll is not chased a month out
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


class InstantField(forms.DateTimeField):
    """A date and time, kept in UTC, within years the database and date arithmetic hold in any
    zone: an offset beyond ±15:59 (PostgreSQL's limit) or a time near year 9999 would be stored
    broken, and break every page that shows it."""

    default_error_messages = {"range": "Give a date and time between the years 1900 and 9000."}

    def to_python(self, value):
        try:
            value = super().to_python(value)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range") from None
        if value is None:
            return None
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range") from None
        if not EARLIEST <= value < LATEST:
            raise forms.ValidationError(self.error_messages["range"], code="range")
        return value


class PollForm(forms.ModelForm):
    destination = forms.ChoiceField(
        label="Destination",
        help_text="A preset, or choose “Other” and give a name and coordinates.",
    )
    requirements_text = forms.CharField(
        label="Requirements",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, e.g. current SWAT certification. Replies count against them.",
    )
    target_kinds = forms.MultipleChoiceField(
        label="Agency kinds",
        choices=Agency.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    reminders = forms.CharField(
        label="Reminders (hours before the deadline)",
        required=False,
        initial="24, 4",
        help_text="Comma-separated, e.g. 24, 4. Only those who have not answered are reminded.",
    )

    class Meta:
        model = Poll
        fields = [
            "title", "purpose", "requesting_agency", "requesting_person", "situation",
            "officers_needed", "needed_team_type", "needed_by", "message",
            "destination_name", "destination_latitude", "destination_longitude",
            "target_regions", "target_team_types", "target_levels", "target_kinds",
            "target_radius_km", "target_agencies", "deadline", "escalate_after_hours",
            "reply_digest",
        ]  # fmt: skip
        field_classes = {"needed_by": InstantField, "deadline": InstantField}
        widgets = {
            "needed_by": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
            "deadline": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
            "message": forms.Textarea(attrs={"rows": 7}),
            "target_regions": forms.CheckboxSelectMultiple,
            "target_team_types": forms.CheckboxSelectMultiple,
            "target_levels": forms.SelectMultiple(attrs={"size": 6}),
            "target_agencies": forms.SelectMultiple(attrs={"size": 8}),
        }
        labels = {
            "destination_name": "Other destination: name",
            "destination_latitude": "Latitude",
            "destination_longitude": "Longitude",
            "target_regions": "Regions",
            "target_team_types": "Team types",
            "target_levels": "Team types at these levels",
            "target_radius_km": "Within (km of the destination)",
            "target_agencies": "Also ask these agencies",
            "escalate_after_hours": "Escalate to alternates after (hours)",
        }
        help_texts = {
            "purpose": "A planning survey sizes what could respond; a request for assistance "
            "means an agency has asked for help. Every email and page says which.",
            "requesting_person": "Required for a request for assistance.",
            "target_regions": "Targets combine: an agency must match every filter you set.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.presets = {f"{i}": d for i, d in enumerate(settings.POLL_DESTINATIONS)}
        self.fields["destination"].choices = [
            *((key, name) for key, (name, _, _) in self.presets.items()),
            (CUSTOM, "Other…"),
        ]
        for name in ("destination_name", "destination_latitude", "destination_longitude"):
            self.fields[name].required = False
        self.fields["requesting_agency"].queryset = Agency.objects.filter(active=True)
        self.fields["target_agencies"].queryset = Agency.objects.filter(active=True)
        self.fields["target_regions"].queryset = Region.objects.all()
        self.fields["target_team_types"].queryset = TeamType.objects.all()
        self.fields["target_levels"].queryset = TeamTypeLevel.objects.select_related("team_type")
        self.fields["needed_team_type"].queryset = TeamType.objects.all()
        poll = self.instance
        if poll.pk:
            match = next(
                (k for k, (n, _, _) in self.presets.items() if n == poll.destination_name), CUSTOM
            )
            self.initial.setdefault("destination", match)
            self.initial.setdefault("requirements_text", "\n".join(poll.requirements))
            self.initial.setdefault(
                "reminders", ", ".join(str(h) for h in poll.reminder_hours_before)
            )
        else:
            self.initial.setdefault("message", MESSAGE_TEMPLATE.format(destination="Chicago"))
            self.initial.setdefault("deadline", timezone.localtime() + timedelta(hours=24))

    def clean_reminders(self):
        raw = self.cleaned_data["reminders"]
        try:
            hours = sorted({int(h) for h in raw.replace(";", ",").split(",") if h.strip()})
        except ValueError:
            raise forms.ValidationError(
                "Use whole hours separated by commas, e.g. 24, 4."
            ) from None
        if any(h <= 0 for h in hours):
            raise forms.ValidationError("Hours before the deadline must be positive.")
        if any(h > MAX_CHASE_HOURS for h in hours):
            raise forms.ValidationError(f"At most {MAX_CHASE_HOURS} hours (30 days) before it.")
        return sorted(hours, reverse=True)

    def clean_escalate_after_hours(self):
        hours = self.cleaned_data["escalate_after_hours"]
        if hours is not None and hours > MAX_CHASE_HOURS:
            raise forms.ValidationError(f"At most {MAX_CHASE_HOURS} hours (30 days).")
        return hours

    def clean_deadline(self):
        deadline = self.cleaned_data["deadline"]
        if deadline <= timezone.now():
            raise forms.ValidationError("The deadline must be in the future.")
        return deadline

    def clean(self):
        data = super().clean()
        if data.get("purpose") == Poll.Purpose.REQUEST:
            if not data.get("requesting_agency"):
                self.add_error("requesting_agency", "Say which agency requests assistance.")
            if not data.get("requesting_person"):
                self.add_error("requesting_person", "Say who requests assistance.")
        choice = data.get("destination")
        if choice in self.presets:
            name, lat, lon = self.presets[choice]
            data.update(destination_name=name, destination_latitude=lat,
                        destination_longitude=lon)  # fmt: skip
            self.instance.destination_name = name
            self.instance.destination_latitude = lat
            self.instance.destination_longitude = lon
        else:
            for name in ("destination_name", "destination_latitude", "destination_longitude"):
                if data.get(name) in (None, ""):
                    self.add_error(name, "Give the destination's name and coordinates.")
        has_target = (
            any(
                data.get(f)
                for f in (
                    "target_regions",
                    "target_team_types",
                    "target_levels",
                    "target_kinds",
                    "target_agencies",
                )
            )
            or data.get("target_radius_km") is not None
        )
        if not has_target:
            raise forms.ValidationError(
                "Choose whom to ask: regions, team types, agency kinds, a radius, or agencies."
            )
        return data

    def save(self, commit=True):
        poll = super().save(commit=False)
        poll.requirements = [
            line.strip() for line in self.cleaned_data["requirements_text"].splitlines()
            if line.strip()
        ]  # fmt: skip
        poll.reminder_hours_before = self.cleaned_data["reminders"]
        poll.target_kinds = self.cleaned_data["target_kinds"]
        if commit:
            poll.save()
            self.save_m2m()
        return poll


class ExtendForm(forms.Form):
    deadline = InstantField(
        label="New deadline",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
    )


def targets_from(form: PollForm):
    """Targets from a compose form as it stands, valid or not: for the live preview."""
    from .selectors import Targets

    form.is_valid()  # fills cleaned_data with whatever fields are valid
    data = form.cleaned_data
    if data.get("destination") in form.presets:
        _, lat, lon = form.presets[data["destination"]]
    elif (
        data.get("destination_latitude") is not None
        and data.get("destination_longitude") is not None
    ):
        lat, lon = data["destination_latitude"], data["destination_longitude"]
    else:
        return None
    return Targets(
        latitude=lat,
        longitude=lon,
        regions=[r.pk for r in data.get("target_regions", [])],
        type_ids=[t.pk for t in data.get("target_team_types", [])],
        levels=[(lv.team_type_id, lv.level) for lv in data.get("target_levels", [])],
        kinds=list(data.get("target_kinds", [])),
        radius_km=data.get("target_radius_km"),
        picked=[a.pk for a in data.get("target_agencies", [])],
    )


# Replies ----------------------------------------------------------------------------------------

MINUTES_HELP = "Whole minutes, at most 72 hours (4320)."


def _minutes(label: str, help_text: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=0,
        max_value=MAX_MINUTES,
        help_text=help_text,
        error_messages={
            "min_value": "Cannot be negative.",
            "max_value": f"At most {MAX_MINUTES} minutes (72 hours).",
            "invalid": "Give whole minutes, e.g. 45.",
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


def _text(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=help_text,
    )


class ReplyForm(forms.Form):
    """The whole-agency part of a reply: decision, authoriser, conditions, reasons."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    decision = forms.ChoiceField(
        label="Can your agency send officers?",
        choices=Reply.Decision.choices,
        widget=forms.RadioSelect,
        help_text="If unavailable, team lines are not recorded; give the reason below.",
        error_messages={"required": "Choose available, available with conditions or unavailable."},
    )
    authorised_by_name = forms.CharField(
        label="Authorised by (name)",
        max_length=150,
        required=False,
        help_text="Who commits these officers: mutual aid needs a named authoriser.",
    )
    authorised_by_rank = forms.CharField(
        label="Rank or title", max_length=100, required=False, help_text="e.g. Chief, Lieutenant."
    )
    conditions = forms.MultipleChoiceField(
        label="Conditions",
        choices=Reply.Condition.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only with “Available with conditions”: tick every one that applies.",
    )
    conditions_text = _text(
        "Conditions in your words", "Required for “Other”; details for any condition."
    )
    decline_reason = _text(
        "Why not?", "Required when unavailable, e.g. officers committed to a local event."
    )
    note = _text("Note to the coordinator", "Optional: anything else the coordinator should know.")

    def clean(self):
        data = super().clean()
        decision = data.get("decision")
        conditions = data.get("conditions") or []
        if decision in (Reply.Decision.AVAILABLE, Reply.Decision.CONDITIONAL):
            if not data.get("authorised_by_name"):
                self.add_error("authorised_by_name", "Name who authorises sending these officers.")
            if not data.get("authorised_by_rank"):
                self.add_error("authorised_by_rank", "Give the authoriser's rank or title.")
        if decision == Reply.Decision.CONDITIONAL and not (
            conditions or data.get("conditions_text")
        ):
            self.add_error("conditions", "Choose at least one condition, or describe it.")
        if decision == Reply.Decision.AVAILABLE and conditions:
            self.add_error(
                "conditions",
                "You ticked conditions: choose “Available with conditions”, or clear them.",
            )
        if Reply.Condition.OTHER in conditions and not data.get("conditions_text"):
            self.add_error("conditions_text", "Describe the “Other” condition.")
        if decision == Reply.Decision.UNAVAILABLE and not data.get("decline_reason", "").strip():
            self.add_error("decline_reason", "Say why your agency cannot send officers.")
        if decision != Reply.Decision.CONDITIONAL:
            data["conditions"] = []
        return data


class ReplyLineForm(forms.Form):
    """One team: officers, vehicles, departure, travel, time on deployment, qualified officers."""

    officers = forms.IntegerField(
        label="Officers available",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    vehicles = forms.IntegerField(
        label="Vehicles",
        required=False,
        min_value=0,
        max_value=500,
        help_text="Optional: vehicles they would bring.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        error_messages={"min_value": "Cannot be negative.", "max_value": "At most 500."},
    )
    depart_minutes = _minutes("Minutes until they can leave", "From the call. " + MINUTES_HELP)
    travel_minutes = _minutes("Minutes of travel", "Prefilled with our estimate; correct it.")
    deploy_hours = forms.IntegerField(
        label="Can stay deployed (hours)",
        required=False,
        min_value=1,
        max_value=MAX_DEPLOY_HOURS,
        help_text="Optional: hours on scene before they must be relieved.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        error_messages={
            "min_value": "At least 1 hour.",
            "max_value": f"At most {MAX_DEPLOY_HOURS} hours (30 days).",
        },
    )
    officers_qualified = forms.IntegerField(
        label="Of them, meeting every requirement",
        required=False,
        min_value=0,
        help_text="How many of these officers meet all the requirements listed above.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        error_messages={"min_value": "Cannot be negative."},
    )

    def __init__(self, *args, team, estimate: int, requirements: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.team, self.estimate = team, estimate
        officers = self.fields["officers"]
        officers.max_value = team.members
        officers.validators.append(MaxValueValidator(team.members))
        officers.widget.attrs.update(min=0, max=team.members)
        officers.help_text = f"0 to {team.members} (the team's members). Leave empty to skip."
        officers.error_messages.update(
            min_value="Cannot be negative.",
            max_value=f"At most {team.members}: the team has {team.members} members.",
            invalid="Give a whole number of officers.",
        )
        self.initial.setdefault("travel_minutes", estimate)
        if not requirements:
            del self.fields["officers_qualified"]

    def clean(self):
        data = super().clean()
        officers = data.get("officers")
        if officers:
            for name in ("depart_minutes", "travel_minutes"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, "Required when officers are available.")
        qualified = data.get("officers_qualified")
        if qualified is not None and officers is not None and qualified > officers:
            self.add_error("officers_qualified", "Cannot be more than the officers available.")
        return data

    @property
    def included(self) -> bool:
        return self.is_bound and self.cleaned_data.get("officers") is not None


TEAM_FIELD = re.compile(r"^team-(\d+)-")


class ReplySubmission:
    """A reply form and one line form per team of the agency, validated together.

    `teams` are the agency's teams the answer may cover (targeted first); a line posted for any
    other team (another agency's, say) is refused and nothing is saved.
    """

    def __init__(self, data=None, *, poll, agency, teams, targeted_ids, estimate, reply=None):
        self.poll, self.agency, self.reply = poll, agency, reply
        lines = {line.team_id: line for line in reply.lines.all()} if reply else {}
        initial = {"version": reply.version if reply else 0}
        if reply:
            initial.update({f: getattr(reply, f) for f in ReplyForm.base_fields if f != "version"})
        self.form = ReplyForm(data, initial=initial)
        self.lines = []
        for team in teams:
            line = lines.get(team.pk)
            self.lines.append(
                ReplyLineForm(
                    data,
                    prefix=f"team-{team.pk}",
                    team=team,
                    estimate=line.estimated_travel_minutes if line else estimate,
                    requirements=bool(poll.requirements),
                    initial={f: getattr(line, f) for f in ReplyLineForm.base_fields}
                    if line
                    else {},
                )
            )
        self.targeted = [f for f in self.lines if f.team.pk in targeted_ids or f.team.pk in lines]
        self.others = [f for f in self.lines if f not in self.targeted]
        self.foreign = set()
        if data is not None:
            known = {team.pk for team in teams}
            self.foreign = {
                int(m[1]) for key in data if (m := TEAM_FIELD.match(key)) and int(m[1]) not in known
            }
        self.errors: list[str] = []

    def is_valid(self) -> bool:
        valid = self.form.is_valid()
        valid = all([line.is_valid() for line in self.lines]) and valid
        if self.foreign:
            self.errors.append(
                f"Only {self.agency.name}'s own teams can be answered for here; the form named "
                f"other teams ({', '.join(f'#{pk}' for pk in sorted(self.foreign))})."
            )
        decision = self.form.cleaned_data.get("decision") if valid else None
        if decision in (Reply.Decision.AVAILABLE, Reply.Decision.CONDITIONAL) and not any(
            line.cleaned_data.get("officers") for line in self.lines
        ):
            self.errors.append(
                "Give the officers available for at least one team, or answer Unavailable."
            )
        return valid and not self.errors

    @property
    def other_open(self) -> bool:
        """Show the other teams unfolded when one of them has data or errors."""
        return any(f.errors or (f.is_bound and f.has_changed()) for f in self.others)

    def error_summary(self) -> list[tuple[str, str]]:
        """(anchor id, message) for every error, to list at the top of the page."""
        summary = [("", message) for message in self.errors]
        forms_ = [(self.form, "")] + [(f, f"{f.team.name}: ") for f in self.lines]
        for form, where in forms_:
            for message in form.non_field_errors():
                summary.append(("", where + message))
            for name, errors in form.errors.items():
                if name == "__all__":
                    continue
                field = form[name]
                for message in errors:
                    summary.append((field.id_for_label, f"{where}{field.label}: {message}"))
        return summary

    def answer(self) -> dict:
        data = dict(self.form.cleaned_data)
        data.pop("version")
        return data

    def line_data(self) -> list[dict]:
        """The answered teams, in the service's terms (unavailable: none)."""
        if self.form.cleaned_data["decision"] == Reply.Decision.UNAVAILABLE:
            return []
        return [
            {"team": f.team, "estimate": f.estimate, **f.cleaned_data}
            for f in self.lines
            if f.included
        ]
