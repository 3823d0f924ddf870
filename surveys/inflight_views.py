"""Pages for managing a sent poll (surveys.inflight): add agencies, re-issue a link, send to
another contact, reopen, test email. Coordinators only; each outward action is confirmed."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from readiness import permissions

from . import inflight
from .forms.inflight import AddAgenciesForm, SendToContactForm
from .models import Invitation, Poll
from .views import _confirm, _confirmed


def _back(poll_id: int):
    return redirect("surveys:poll-detail", poll_id)


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_polls)
def poll_add_agencies(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    if poll.state not in (Poll.State.OPEN, Poll.State.SENDING):
        messages.error(request, "Agencies can be added to an open poll only.")
        return _back(poll.pk)
    form = AddAgenciesForm(request.POST if request.method == "POST" else None, poll=poll)
    if request.method == "POST" and form.is_valid():
        chosen = form.cleaned_data["agencies"]
        if not _confirmed(request):
            n = len(chosen)
            names = ", ".join(a.name for a in chosen[:10]) + ("…" if n > 10 else "")
            return _confirm(
                request, poll, title=f"Invite {n} more agenc{'y' if n == 1 else 'ies'}?",
                message=f"“{poll.title}” is emailed at once to {names}.",
                button=f"Invite {n} agenc{'y' if n == 1 else 'ies'} now",
            )  # fmt: skip
        try:
            added = inflight.poll_add_agencies(poll=poll, agencies=chosen, request=request)
        except inflight.NotPossible as exc:
            messages.error(request, str(exc))
        else:
            (messages.success if added.invited else messages.warning)(request, added.message())
        return _back(poll.pk)
    return render(
        request,
        "surveys/inflight_form.html",
        {"poll": poll, "form": form, "title": "Add agencies to this poll",
         "button": "Invite the chosen agencies"},
        status=422 if form.errors else 200,
    )  # fmt: skip


def _invitation(poll_id: int, invitation_id: int) -> Invitation:
    return get_object_or_404(
        Invitation.objects.select_related("agency", "poll", "contact"),
        pk=invitation_id,
        poll_id=poll_id,
    )


@require_POST
@permissions.require(permissions.can_manage_polls)
def invitation_reissue(request, poll_id: int, invitation_id: int):
    invitation = _invitation(poll_id, invitation_id)
    if not _confirmed(request):
        return _confirm(
            request, invitation.poll, title="Re-issue this link?",
            message=f"{invitation.agency.name} ({invitation.email}) is emailed a new reply "
            "link, and every link sent before stops working. Answers already given stay.",
            button="Send a new link",
        )  # fmt: skip
    try:
        inflight.invitation_reissue(invitation=invitation, request=request)
    except inflight.NotPossible as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"A new link is on its way to {invitation.email}; earlier links no longer work.",
        )
    return _back(poll_id)


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_polls)
def invitation_send_to(request, poll_id: int, invitation_id: int):
    invitation = _invitation(poll_id, invitation_id)
    form = SendToContactForm(
        request.POST if request.method == "POST" else None, invitation=invitation
    )
    if request.method == "POST" and form.is_valid():
        contact = form.cleaned_data["contact"]
        if not _confirmed(request):
            return _confirm(
                request, invitation.poll, title=f"Send the poll to {contact.name}?",
                message=f"{contact.name} ({contact.email}) gets the poll with a link of their "
                f"own; the link sent to {invitation.email} keeps working, and either may answer "
                f"for {invitation.agency.name}.",
                button=f"Send to {contact.name}",
            )  # fmt: skip
        try:
            inflight.invitation_send_to_contact(
                invitation=invitation, contact=contact, request=request
            )
        except inflight.NotPossible as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"The poll is on its way to {contact.email}.")
        return _back(poll_id)
    return render(
        request,
        "surveys/inflight_form.html",
        {"poll": invitation.poll, "form": form,
         "title": f"Send to another contact of {invitation.agency.name}",
         "button": "Send", "empty": not form.fields["contact"].queryset.exists(),
         "agency": invitation.agency},
        status=422 if form.errors else 200,
    )  # fmt: skip


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_reopen(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    if poll.state == Poll.State.CLOSED and not _confirmed(request):
        return _confirm(
            request, poll, title="Reopen this poll?",
            message="Reply links work again until the deadline "
            f"({poll.deadline:%a %b %-d, %H:%M}); invitations the close stopped are sent.",
            button="Reopen",
        )  # fmt: skip
    try:
        inflight.poll_reopen(poll=poll, request=request)
    except inflight.NotPossible as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Poll reopened: reply links work again until the deadline.")
    return _back(poll.pk)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_test_email(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    to = inflight.poll_test_email(poll=poll, request=request)
    messages.success(
        request, f"A test of this poll's email is on its way to {to}. Its link records nothing."
    )
    return _back(poll.pk)
