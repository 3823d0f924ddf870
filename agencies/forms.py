from django import forms
from django.conf import settings
from django.utils import timezone

from .models import Agency, Contact, Region, SpecialTeam, TeamMember, TeamType
from .rosters import parse_qualifications, qualifications_text


class AgencyFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, city or county"}),
    )
    region = forms.ModelChoiceField(
        queryset=Region.objects.order_by("name"), required=False, empty_label="All regions"
    )
    kind = forms.ChoiceField(
        choices=[("", "All kinds"), *Agency.Kind.choices], required=False, label="Kind"
    )
    team_type = forms.ModelChoiceField(
        queryset=TeamType.objects.all(),
        required=False,
        empty_label="Any or no team",
        label="Has team",
    )
    sort = forms.ChoiceField(
        choices=[
            ("name", "Name"),
            ("-sworn", "Most sworn officers"),
            ("-team_officers", "Most team officers"),
            ("region", "Region, then name"),
        ],
        required=False,
        label="Sort by",
    )
    inactive = forms.BooleanField(required=False, label="Include inactive")


class RegistryImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 CSV with the documented columns. Nothing changes if any row is wrong.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    dry_run = forms.BooleanField(
        label="Check only (change nothing)",
        required=False,
        help_text="Validate the file and show what would change.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.REGISTRY_IMPORT_MAX_BYTES:
            limit = settings.REGISTRY_IMPORT_MAX_BYTES // (1024 * 1024)
            raise forms.ValidationError(f"The file is larger than {limit} MB.")
        return upload


class AgencyFactsForm(forms.ModelForm):
    """The figures an agency's commander keeps current (the rest comes from the registry)."""

    class Meta:
        model = Agency
        fields = ["sworn_officers", "min_home_staffing", "address", "city", "county"]
        widgets = {
            "sworn_officers": forms.NumberInput(attrs={"inputmode": "numeric"}),
            "min_home_staffing": forms.NumberInput(attrs={"inputmode": "numeric"}),
        }

    def clean(self):
        data = super().clean()
        sworn, home = data.get("sworn_officers"), data.get("min_home_staffing")
        if sworn is not None and home is not None and home > sworn:
            self.add_error(
                "min_home_staffing",
                f"Cannot exceed the {sworn} sworn officers.",
            )
        return data


class TeamForm(forms.ModelForm):
    class Meta:
        model = SpecialTeam
        fields = [
            "name",
            "team_type",
            "level",
            "members",
            "commander_name",
            "commander_phone",
            "notes",
            "active",
        ]
        labels = {
            "members": "Officers on the team",
            "level": "NIMS type",
            "commander_name": "Team commander",
            "commander_phone": "Commander's phone",
            "active": "Active (can be asked in polls)",
        }
        widgets = {
            "members": forms.NumberInput(attrs={"inputmode": "numeric"}),
            "level": forms.NumberInput(attrs={"inputmode": "numeric"}),
            "commander_phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, agency: Agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.agency = agency
        self.instance.agency = agency
        self.fields["team_type"].queryset = TeamType.objects.all()

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        clash = SpecialTeam.objects.filter(agency=self.agency, name__iexact=name)
        if clash.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"{self.agency.name} already has a team named {name}.")
        return name

    def clean(self):
        data = super().clean()
        members = data.get("members")
        contributed = (
            sum(m.officers for m in self.instance.memberships.all()) if self.instance.pk else 0
        )
        if members is not None and members < contributed:
            self.add_error(
                "members",
                f"Member agencies contribute {contributed} officers to this team: the whole "
                "team cannot be smaller.",
            )
        return data


class ContactForm(forms.ModelForm):
    primary = forms.BooleanField(
        label="Primary contact (polls are sent to them first)",
        required=False,
    )

    class Meta:
        model = Contact
        fields = [
            "name", "title", "email", "mobile", "phone", "channels", "quiet_start", "quiet_end",
            "active",
        ]  # fmt: skip
        labels = {"mobile": "Mobile number", "active": "Active (may be asked)"}
        help_texts = {
            "mobile": "For texts. With the country code if outside the US, e.g. +44 7911 123456.",
            "quiet_start": "Planning surveys are not texted in the quiet hours (local time); "
            "a request for assistance is.",
        }
        widgets = {
            "email": forms.EmailInput(attrs={"autocomplete": "email"}),
            "mobile": forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
            "phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
            "channels": forms.RadioSelect,
            "quiet_start": forms.TimeInput(attrs={"type": "time"}),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}),
        }

    def __init__(self, *args, agency: Agency, **kwargs):
        super().__init__(*args, **kwargs)
        self.agency = agency
        self.instance.agency = agency
        if self.instance.pk:
            self.fields["primary"].initial = self.instance.role == Contact.Role.PRIMARY

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        clash = Contact.objects.filter(agency=self.agency, email__iexact=email)
        if clash.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(
                f"{self.agency.name} already has a contact with this email."
            )
        return email

    def clean_name(self):
        return " ".join(self.cleaned_data["name"].split())

    def clean(self):
        data = super().clean()
        texts = data.get("channels") in (Contact.Channels.SMS, Contact.Channels.BOTH)
        if texts and not data.get("mobile") and "mobile" not in self.errors:
            self.add_error("mobile", "Texts need a mobile number.")
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if (start is None) != (end is None):
            missing = "quiet_end" if end is None else "quiet_start"
            self.add_error(missing, "Give both ends of the quiet hours, or neither.")
        elif start is not None and start == end:
            self.add_error("quiet_end", "The quiet hours must end at another time than they start.")
        return data


class MemberForm(forms.ModelForm):
    qualifications = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Codes, each with its expiry if it has one: swat-cert:2027-06-30; crowd-control",
    )

    class Meta:
        model = TeamMember
        fields = ["name", "rank", "agency", "email", "mobile", "home_base", "is_leader", "active"]
        labels = {"mobile": "Mobile number", "active": "Active (may be asked)"}
        widgets = {
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
            "mobile": forms.TextInput(attrs={"type": "tel"}),
        }

    def __init__(self, *args, team: SpecialTeam, agencies: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = self.instance.team = team
        self.fields["agency"].queryset = Agency.objects.filter(
            pk__in=[a.pk for a in agencies.values()]
        )
        self.fields["agency"].initial = team.agency_id
        self.fields["agency"].empty_label = None
        if self.instance.pk:
            self.fields["qualifications"].initial = qualifications_text(self.instance)

    def clean_name(self):
        return " ".join(self.cleaned_data["name"].split())

    def clean_qualifications(self):
        found, problems = parse_qualifications(
            self.cleaned_data["qualifications"], today=timezone.localdate()
        )
        if problems:
            raise forms.ValidationError(problems)
        return found

    def clean(self):
        data = super().clean()
        name, agency = data.get("name"), data.get("agency")
        if name and agency:
            clash = TeamMember.objects.filter(team=self.team, agency=agency, name__iexact=name)
            if clash.exclude(pk=self.instance.pk).exists():
                self.add_error("name", f"{name} is already on {self.team.name}.")
        return data


class RosterImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 CSV with a header: name, rank, agency, email, mobile, home_base, leader, "
        "qualifications, active. Nothing changes if any row is wrong.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    dry_run = forms.BooleanField(label="Check only (change nothing)", required=False)
