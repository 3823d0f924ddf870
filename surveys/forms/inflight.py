"""Forms for managing a sent poll: agencies to add, another contact to send it to."""

from django import forms

from agencies.models import Agency, Contact


class AddAgenciesForm(forms.Form):
    agencies = forms.ModelMultipleChoiceField(
        queryset=Agency.objects.none(),
        label="Agencies to invite",
        help_text="Active agencies not yet asked. Each is emailed at once, at its primary contact.",
        widget=forms.SelectMultiple(attrs={"data-searchable": "", "size": 12}),
        error_messages={"required": "Choose at least one agency to invite."},
    )

    def __init__(self, *args, poll, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agencies"].queryset = (
            Agency.objects.filter(active=True).exclude(invitations__poll=poll).order_by("name")
        )


class SendToContactForm(forms.Form):
    contact = forms.ModelChoiceField(
        queryset=Contact.objects.none(),
        label="Send to",
        empty_label=None,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the contact to send the poll to."},
    )

    def __init__(self, *args, invitation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = (
            Contact.objects.filter(agency_id=invitation.agency_id, active=True)
            .exclude(invitations__poll_id=invitation.poll_id)
            .order_by("-role", "name")
        )
        self.fields["contact"].label_from_instance = lambda c: (
            f"{c.name}{', ' + c.title if c.title else ''} <{c.email}>"
            f"{' (primary)' if c.role == Contact.Role.PRIMARY else ''}"
        )
