"""The audit trail's filter form."""

from django import forms


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        required=False, max_length=64, help_text="e.g. auth, agency.update, user"
    )
    actor = forms.CharField(required=False, max_length=254, label="Who (email)")
    target = forms.CharField(required=False, max_length=100, label="Object")
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
