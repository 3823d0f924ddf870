"""People (invite, edit, set a password from an invitation) and API tokens: their forms."""

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.db.models import Q

from readiness.models import User

# The agency a commander acts for, as the user model names it: the core takes the registry's
# model from its own foreign key rather than importing the registry app.
Agency = User._meta.get_field("agency").related_model


class PersonForm(forms.ModelForm):
    """Invite someone, or change their name, role, agency or access."""

    agency = forms.ModelChoiceField(
        queryset=Agency._default_manager.filter(active=True).order_by("name"),
        required=False,
        help_text="Required for an agency commander: the agency they answer for.",
    )

    class Meta:
        model = User
        fields = ["email", "full_name", "role", "agency", "is_active"]
        labels = {"is_active": "Active (may sign in)"}
        help_texts = {
            "role": "Coordinators manage the registry, polls and people; officials read; "
            "commanders answer for one agency."
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["full_name"].required = True
        # Active agencies, plus the one the person already has even if it was retired since.
        self.fields["agency"].queryset = Agency._default_manager.filter(
            Q(active=True) | Q(pk=self.instance.agency_id)
        ).order_by("name")
        if self.instance.pk:
            self.fields["email"].disabled = True  # the login; change it in the admin
        else:
            del self.fields["is_active"]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        others = User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk)
        if not self.instance.pk and others.exists():
            raise forms.ValidationError("Someone with this email address already has an account.")
        return email

    def clean(self):
        data = super().clean()
        if data.get("role") == User.Role.COMMANDER and not data.get("agency"):
            self.add_error("agency", "Choose the agency this commander acts for.")
        return data


class InvitationPasswordForm(SetPasswordForm):
    pass


class ApiTokenForm(forms.Form):
    """Issue a token for an integration: what uses it, its role, and how long it lives."""

    EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]

    name = forms.CharField(
        max_length=100, help_text="What will use it, e.g. Cook County EOC wall display."
    )
    role = forms.ChoiceField(
        choices=User.Role.choices,
        initial=User.Role.OFFICIAL,
        help_text="Officials read; commanders answer for one agency; coordinators manage polls. "
        "Give the least that works.",
    )
    agency = forms.ModelChoiceField(
        queryset=Agency._default_manager.filter(active=True).order_by("name"),
        required=False,
        help_text="Required for a commander's token: the agency it answers for.",
    )
    expires_in = forms.ChoiceField(
        label="Expires after", choices=EXPIRY_CHOICES, initial="90", required=False
    )

    def clean(self):
        data = super().clean()
        if data.get("role") == User.Role.COMMANDER and not data.get("agency"):
            self.add_error("agency", "Choose the agency this token answers for.")
        return data
