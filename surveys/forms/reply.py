"""The reply form: an agency's answer and a line per team, checked the same way whichever
channel brought it (the link's page, a commander's page, the API)."""

import re

from django import forms
from django.core.validators import MaxValueValidator

from readiness.forms import quick_copy

from .. import selectors
from ..models import MAX_DEPLOY_HOURS, MAX_MINUTES, Reply

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


@quick_copy(own=())  # its fields are the same for every agency: shared
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

        def missing(field: str) -> bool:
            # A field that already has its own error (too long, say) is not also "missing":
            # one clear error per field.
            return field not in self.errors and not str(data.get(field) or "").strip()

        if decision in (Reply.Decision.AVAILABLE, Reply.Decision.CONDITIONAL):
            if missing("authorised_by_name"):
                self.add_error("authorised_by_name", "Name who authorises sending these officers.")
            if missing("authorised_by_rank"):
                self.add_error("authorised_by_rank", "Give the authoriser's rank or title.")
        if (
            decision == Reply.Decision.CONDITIONAL
            and not conditions
            and missing("conditions_text")
            and "conditions" not in self.errors
        ):
            self.add_error("conditions", "Choose at least one condition, or describe it.")
        if decision == Reply.Decision.AVAILABLE and conditions:
            self.add_error(
                "conditions",
                "You ticked conditions: choose “Available with conditions”, or clear them.",
            )
        if Reply.Condition.OTHER in conditions and missing("conditions_text"):
            self.add_error("conditions_text", "Describe the “Other” condition.")
        if decision == Reply.Decision.UNAVAILABLE and missing("decline_reason"):
            self.add_error("decline_reason", "Say why your agency cannot send officers.")
        if decision != Reply.Decision.CONDITIONAL:
            data["conditions"] = []
        return data


@quick_copy(own=("officers",))  # the team's limit is set on its own copy
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

    def __init__(
        self, data=None, *, poll, agency, teams, targeted_ids, estimate, reply=None, suggested=None
    ):
        self.poll, self.agency, self.reply = poll, agency, reply
        lines = {line.team_id: line for line in reply.lines.all()} if reply else {}
        initial = {"version": reply.version if reply else 0}
        if reply:
            initial.update({f: getattr(reply, f) for f in ReplyForm.base_fields if f != "version"})
        self.form = ReplyForm(data, initial=initial)
        self.lines = []
        requirements = selectors.poll_has_requirements(poll)
        for team in teams:
            line = lines.get(team.pk)
            self.lines.append(
                ReplyLineForm(
                    data,
                    prefix=f"team-{team.pk}",
                    team=team,
                    estimate=line.estimated_travel_minutes if line else estimate,
                    requirements=requirements,
                    initial={f: getattr(line, f) for f in ReplyLineForm.base_fields}
                    if line
                    else dict((suggested or {}).get(team.pk, {})),
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
