"""The compose form (the page's and, through the API, the JSON's) and the extend form: what a
poll may say, whom it may target, and when it is chased."""

from datetime import UTC, datetime, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from agencies.models import Agency, Region, TeamType, TeamTypeLevel

from ..models import MAX_MINUTES, Poll
from ..selectors import Targets

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


def whole_numbers(raw: str, unit: str, example: str) -> list[int]:
    """The whole numbers of a comma-separated box (semicolons too), in the order typed."""
    try:
        return [int(n) for n in raw.replace(";", ",").split(",") if n.strip()]
    except ValueError:
        raise forms.ValidationError(
            f"Use whole {unit} separated by commas, e.g. {example}."
        ) from None


def check_wave_wait(minutes: int) -> None:
    if not 5 <= minutes <= 24 * 60:
        raise forms.ValidationError("Wait 5 minutes to 24 hours between rings.")


class PollForm(forms.ModelForm):
    # In the order a coordinator thinks: what, why and who asked; whom; where (the preset
    # before its custom fields); when and chasing.
    field_order = [
        "title", "purpose", "requesting_agency", "requesting_person", "situation", "message",
        "requirements_text", "required_qualifications", "officers_needed", "needed_team_type",
        "needed_by",
        "target_regions", "target_team_types", "target_levels", "target_kinds",
        "target_radius_km", "target_agencies",
        "destination", "destination_name", "destination_latitude", "destination_longitude",
        "deadline", "reminders", "escalate_after_hours", "reply_digest",
        "wave_by", "waves", "wave_wait_minutes", "wave_waits_text", "wave_count_conditional",
    ]  # fmt: skip

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
    waves = forms.CharField(
        label="Ask in waves: the rings",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="By travel time: minutes, e.g. 45, 90, 180 (the agencies within 45 minutes "
        "first, then up to 90, then 180, then the rest). By regions or chosen agencies: one ring "
        "per line, names or keys separated by commas. Each next ring only while the need is not "
        "covered nor likely to be. Empty: everyone at once. Needs a number of officers needed.",
    )
    wave_waits_text = forms.CharField(
        label="Or a wait per ring (minutes)",
        required=False,
        help_text="E.g. 20, 30, 60: after the first ring 20 minutes, after the second 30, then "
        "60. Rings without one wait as above.",
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
            "required_qualifications",
            "destination_name", "destination_latitude", "destination_longitude",
            "target_regions", "target_team_types", "target_levels", "target_kinds",
            "target_radius_km", "target_agencies", "deadline", "escalate_after_hours",
            "reply_digest", "wave_by", "wave_wait_minutes", "wave_count_conditional",
        ]  # fmt: skip
        field_classes = {"needed_by": InstantField, "deadline": InstantField}
        widgets = {
            "needed_by": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
            "deadline": forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
            "message": forms.Textarea(attrs={"rows": 7}),
            "target_regions": forms.CheckboxSelectMultiple,
            "target_team_types": forms.CheckboxSelectMultiple,
            "required_qualifications": forms.CheckboxSelectMultiple,
            # data-searchable: app.js adds a search box and tick-box list (276 agencies).
            "target_levels": forms.SelectMultiple(attrs={"size": 6, "data-searchable": True}),
            "target_agencies": forms.SelectMultiple(attrs={"size": 8, "data-searchable": True}),
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
            "wave_wait_minutes": "Wait before the next ring (minutes)",
            "required_qualifications": "Qualifications required (from team rosters)",
        }
        help_texts = {
            "purpose": "A planning survey sizes what could respond; a request for assistance "
            "means an agency has asked for help. Every email and page says which.",
            "requesting_person": "Required for a request for assistance.",
            "target_regions": "Targets combine: an agency must match every filter you set.",
            "required_qualifications": "Where commanders ask their members, only members "
            "holding every one, unexpired, are counted as qualified.",
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
        self.fields["wave_wait_minutes"].required = False
        self.fields["wave_by"].required = False
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
            self.initial.setdefault("waves", self._rings_text(poll))
            self.initial.setdefault("wave_waits_text", ", ".join(map(str, poll.wave_waits)))
        else:
            self.initial.setdefault("message", MESSAGE_TEMPLATE.format(destination="Chicago"))
            # Two days: the default reminders (24 and 4 hours before) both have time to fire,
            # so an untouched form raises no "reminder already past" check.
            self.initial.setdefault("deadline", timezone.localtime() + timedelta(hours=48))

    @staticmethod
    def _rings_text(poll: Poll) -> str:
        if poll.wave_by == Poll.WaveBy.TRAVEL:
            return ", ".join(str(m) for m in poll.wave_rings)
        model = Region if poll.wave_by == Poll.WaveBy.REGION else Agency
        names = dict(model.objects.values_list("pk", "name"))
        return "\n".join(", ".join(names.get(i, str(i)) for i in ids) for ids in poll.wave_rings)

    def clean_reminders(self):
        hours = sorted(set(whole_numbers(self.cleaned_data["reminders"], "hours", "24, 4")))
        if any(h <= 0 for h in hours):
            raise forms.ValidationError("Hours before the deadline must be positive.")
        if any(h > MAX_CHASE_HOURS for h in hours):
            raise forms.ValidationError(f"At most {MAX_CHASE_HOURS} hours (30 days) before it.")
        return sorted(hours, reverse=True)

    def clean_waves(self):
        raw = self.cleaned_data["waves"]
        by = self.data.get(self.add_prefix("wave_by")) or Poll.WaveBy.TRAVEL
        if by in (Poll.WaveBy.REGION, Poll.WaveBy.AGENCY) and raw.strip():
            return self._named_rings(raw, Region if by == Poll.WaveBy.REGION else Agency)
        rings = sorted(set(whole_numbers(raw, "minutes of travel", "45, 90, 180")))
        if any(m <= 0 or m > MAX_MINUTES for m in rings):
            raise forms.ValidationError(f"Each ring is 1 to {MAX_MINUTES:,} minutes of travel.")
        if len(rings) > 8:
            raise forms.ValidationError("At most 8 rings.")
        return rings

    def _named_rings(self, raw: str, model) -> list[list[int]]:
        """One ring per line of names, keys or ids; every unknown one is named with its line."""
        rings, unknown = [], []
        lookup = {}
        for pk, name, code in model.objects.values_list(
            "pk", "name", "code" if model is Agency else "name"
        ):  # fmt: skip
            lookup.update({str(pk): pk, name.lower(): pk, code.lower(): pk})
        for number, line in enumerate(raw.splitlines(), start=1):
            words = [w.strip() for w in line.split(",") if w.strip()]
            if not words:
                continue
            ids = []
            for word in words:
                pk = lookup.get(word.lower())
                if pk is None:
                    unknown.append(f"line {number}: “{word}”")
                elif pk not in ids:
                    ids.append(pk)
            rings.append(ids)
        what = "region" if model is Region else "agency"
        if unknown:
            raise forms.ValidationError(f"No such {what}: {'; '.join(unknown[:5])}.")
        if len(rings) > 8:
            raise forms.ValidationError("At most 8 rings.")
        return rings

    def clean_wave_waits_text(self):
        waits = whole_numbers(self.cleaned_data["wave_waits_text"], "minutes", "20, 30")
        for minutes in waits:
            check_wave_wait(minutes)
        if len(waits) > 9:
            raise forms.ValidationError("At most one wait per ring.")
        return waits

    def clean_wave_by(self):
        return self.cleaned_data["wave_by"] or Poll.WaveBy.TRAVEL

    def clean_wave_wait_minutes(self):
        minutes = self.cleaned_data["wave_wait_minutes"]
        if minutes is None:
            return Poll._meta.get_field("wave_wait_minutes").default
        check_wave_wait(minutes)
        return minutes

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
        if data.get("waves") and not data.get("officers_needed"):
            self.add_error("officers_needed", "Waves ask until the need is covered: say how "
                           "many officers are needed.")  # fmt: skip
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
        poll.wave_rings = self.cleaned_data["waves"]
        poll.wave_waits = self.cleaned_data["wave_waits_text"]
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
