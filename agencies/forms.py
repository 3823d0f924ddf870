from django import forms
from django.conf import settings

from .models import Agency, Region, TeamType


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
