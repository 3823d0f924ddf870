"""The commander's forward to members, and a member's answer (a few taps on a phone)."""

from django import forms
from django.utils import timezone

from agencies.models import TeamMember
from readiness.forms import quick_copy

from ..models import MAX_MINUTES, MemberAsk
from .compose import LOCAL_INPUT, InstantField

DEPARTURES = [(15, "15 min"), (30, "30 min"), (45, "45 min"), (60, "1 hour"), (90, "1½ hours"),
              (120, "2 hours"), (240, "4 hours")]  # fmt: skip


class ForwardForm(forms.Form):
    answer_by = InstantField(
        label="Members answer by",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        help_text="Your own deadline, well before the poll's, so that you can send the agency's "
        "answer in time.",
    )

    wanted = forms.IntegerField(
        label="Or ask in waves until this many are willing",
        required=False,
        min_value=1,
        max_value=TeamMember.MAX_PER_TEAM,
        help_text="Asks twice that many first (team leaders first), then more only while too "
        "few say yes. Leave empty to ask everyone.",
    )
    members = forms.ModelMultipleChoiceField(
        label="Or ask only these members",
        queryset=TeamMember.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Members of the targeted teams not asked yet and not away. Tick some and "
        "choose “Ask the ticked members”; with none ticked, “Ask every member” asks them all.",
    )

    def __init__(self, *args, poll, eligible=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.poll = poll
        self.fields["members"].queryset = (
            eligible if eligible is not None else TeamMember.objects.none()
        )
        self.fields["members"].label_from_instance = lambda m: (
            f"{m.name}{f' ({m.rank})' if m.rank else ''}, {m.team.name}"
        )

    def clean(self):
        data = super().clean()
        if self.data.get("scope") == "chosen" and not data.get("members"):
            self.add_error("members", "Tick the members to ask, or ask every member.")
        if self.data.get("scope") == "waves" and not data.get("wanted"):
            self.add_error("wanted", "Say how many willing officers you need.")
        if self.data.get("scope") != "chosen":
            data["members"] = None  # every member not asked yet
        if self.data.get("scope") != "waves":
            data["wanted"] = None
        return data

    def clean_answer_by(self):
        moment = self.cleaned_data["answer_by"]
        if moment <= timezone.now():
            raise forms.ValidationError("Give a time in the future.")
        if moment > self.poll.deadline:
            raise forms.ValidationError("Give a time before the poll's own deadline.")
        return moment


@quick_copy(own=())  # shared: the same for every member
class MemberAnswerForm(forms.Form):
    answer = forms.ChoiceField(
        label="Would you go?",
        choices=[c for c in MemberAsk.Answer.choices if c[0]],
        widget=forms.RadioSelect,
        error_messages={"required": "Say whether you would go."},
    )
    depart = forms.TypedChoiceField(
        label="How soon could you leave?",
        choices=DEPARTURES,
        coerce=int,
        required=False,
        widget=forms.RadioSelect,
    )
    depart_other = forms.IntegerField(
        label="Or, in minutes",
        required=False,
        min_value=0,
        max_value=MAX_MINUTES,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    start = forms.ChoiceField(
        label="Starting from",
        choices=MemberAsk.Start.choices,
        initial=MemberAsk.Start.STATION,
        required=False,
        widget=forms.RadioSelect,
    )
    start_place = forms.CharField(label="Where?", required=False, max_length=200)
    note = forms.CharField(
        label="Note (conditions, anything your commander should know)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self):
        data = super().clean()
        going = data.get("answer") in (MemberAsk.Answer.WILLING, MemberAsk.Answer.CONDITIONAL)
        minutes = data.get("depart_other")
        if minutes is None:
            minutes = data.get("depart") if data.get("depart") not in ("", None) else None
        if going and minutes is None and "depart_other" not in self.errors:
            self.add_error("depart", "Say how soon you could leave.")
        if data.get("answer") == MemberAsk.Answer.CONDITIONAL and not data.get("note"):
            self.add_error("note", "Say what your conditions are.")
        if going and data.get("start") == MemberAsk.Start.OTHER and not data.get("start_place"):
            self.add_error("start_place", "Say where you would start from.")
        data["depart_minutes"] = minutes if going else None
        data["start"] = (data.get("start") or MemberAsk.Start.STATION) if going else ""
        return data


@quick_copy(own=())  # shared: the same for every member
class AwayForm(forms.Form):
    away_until = forms.DateField(
        label="I am unavailable until",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave, injury, training: you will not be asked until the day after. Leave it "
        "empty to say you are back.",
    )
    away_reason = forms.ChoiceField(
        label="Because of",
        required=False,
        choices=[("", "—"), ("leave", "Leave"), ("injury", "Injury or illness"),
                 ("training", "Training"), ("other", "Other")],
    )  # fmt: skip

    def clean_away_until(self):
        until = self.cleaned_data["away_until"]
        if until and until < timezone.localdate():
            raise forms.ValidationError("Give a date from today on.")
        if until and until > timezone.localdate() + timezone.timedelta(days=366):
            raise forms.ValidationError("At most a year ahead.")
        return until
