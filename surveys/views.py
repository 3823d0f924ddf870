from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readiness import audit, permissions

from . import selectors, services
from .forms import ExtendForm, PollForm, targets_from
from .models import Invitation, Poll


def _delivery_counts(poll: Poll) -> dict:
    counts = poll.invitations.aggregate(
        total=Count("pk"),
        **{state: Count("pk", filter=Q(state=state)) for state in Invitation.State.values},
    )
    counts["done"] = counts["total"] > 0 and counts["queued"] + counts["sending"] == 0
    return counts


@require_GET
@permissions.require(permissions.can_view_polls)
def poll_list(request):
    polls = Poll.objects.select_related("created_by", "requesting_agency").annotate(
        asked=Count("invitations"),
        sent=Count("invitations", filter=Q(invitations__state=Invitation.State.SENT)),
        failed=Count("invitations", filter=Q(invitations__state=Invitation.State.FAILED)),
        agencies=Count("invitations__agency", distinct=True),
        answered=Count(
            "invitations__agency",
            filter=Q(invitations__replied_at__isnull=False),
            distinct=True,
        ),
    )
    return render(
        request,
        "surveys/poll_list.html",
        {"polls": polls, "can_manage": permissions.can_manage_polls(request.user)},
    )


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_polls)
def poll_create(request):
    form = PollForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.instance.created_by = request.user
        poll = form.save()
        audit.record("poll.create", request=request, obj=poll)
        messages.success(request, "Draft saved. Check the recipients, then send.")
        return redirect("surveys:poll-detail", poll.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "surveys/poll_form.html", {"form": form}, status=status)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_preview(request):
    """The live recipient preview beside the compose form (htmx posts the form as it stands)."""
    targets = targets_from(PollForm(request.POST))
    context = {"recipients": [], "unreachable": [], "reachable": 0, "officers": 0}
    if targets is not None:
        context.update(_recipient_context(list(selectors.recipients(targets=targets))))
    context["incomplete"] = targets is None
    return render(request, "surveys/poll_form.html#preview", context)


def _recipient_context(recipients: list) -> dict:
    unreachable = [a for a in recipients if not a.primary_contacts]
    return {
        "recipients": recipients,
        "unreachable": unreachable,
        "reachable": len(recipients) - len(unreachable),
        "officers": sum(t.members for a in recipients for t in a.targeted_teams),
    }


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_polls)
def poll_edit(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    if poll.state != Poll.State.DRAFT:
        messages.error(request, "Only a draft can be edited; this poll has been sent.")
        return redirect("surveys:poll-detail", poll.pk)
    form = PollForm(request.POST or None, instance=poll)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Lock and look again: another coordinator may have sent it meanwhile.
            if Poll.objects.select_for_update().get(pk=poll.pk).state != Poll.State.DRAFT:
                messages.error(request, "This poll was sent meanwhile; it can no longer be edited.")
                return redirect("surveys:poll-detail", poll.pk)
            poll = form.save()
        audit.record("poll.update", request=request, obj=poll,
                     changes={"fields": sorted(form.changed_data)})  # fmt: skip
        messages.success(request, "Draft updated.")
        return redirect("surveys:poll-detail", poll.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "surveys/poll_form.html", {"form": form, "poll": poll}, status=status)


@require_GET
@permissions.require(permissions.can_view_polls)
def poll_detail(request, poll_id: int):
    poll = get_object_or_404(
        Poll.objects.select_related("created_by", "requesting_agency", "needed_team_type"),
        pk=poll_id,
    )
    context = {
        "poll": poll,
        "can_manage": permissions.can_manage_polls(request.user),
        "counts": _delivery_counts(poll),
        "extend_form": ExtendForm(initial={"deadline": poll.deadline}),
    }
    if poll.state == Poll.State.DRAFT:
        context.update(_recipient_context(list(selectors.poll_recipients(poll=poll))))
    else:
        context["invitations"] = poll.invitations.select_related("agency", "contact").order_by(
            "distance_km"
        )
    if request.htmx:
        return render(request, "surveys/poll_detail.html#progress", context)
    return render(request, "surveys/poll_detail.html", context)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_send(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    try:
        count = services.poll_send(poll=poll, request=request)
    except services.PollNotDraft:
        messages.info(request, "This poll has already been sent.")
    except services.PollNotSendable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Sending to {count} agenc{'y' if count == 1 else 'ies'}.")
    return redirect("surveys:poll-detail", poll.pk)


def _open_poll_action(request, poll_id: int, action, *, done: str, refused: str):
    """Run a service on an open poll and say how it went; every action returns to the poll."""
    poll = get_object_or_404(Poll, pk=poll_id)
    try:
        result = action(poll=poll, request=request)
    except services.PollNotOpen:
        messages.error(request, refused)
    else:
        messages.success(request, done.format(result=result))
    return redirect("surveys:poll-detail", poll.pk)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_close(request, poll_id: int):
    return _open_poll_action(
        request, poll_id, services.poll_close,
        done="Poll closed: reply links no longer work.",
        refused="Only an open poll can be closed.",
    )  # fmt: skip


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_cancel(request, poll_id: int):
    return _open_poll_action(
        request, poll_id, services.poll_cancel,
        done="Poll cancelled: everyone asked is told to stand down.",
        refused="Only an open poll can be cancelled.",
    )  # fmt: skip


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_remind(request, poll_id: int):
    return _open_poll_action(
        request, poll_id, services.poll_remind_silent,
        done="Reminder sent to {result} contact(s) whose agency has not answered.",
        refused="Only an open poll's silent agencies can be reminded.",
    )  # fmt: skip


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_extend(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the new deadline as a date and time.")
        return redirect("surveys:poll-detail", poll.pk)
    try:
        services.poll_extend(poll=poll, deadline=form.cleaned_data["deadline"], request=request)
    except services.PollNotOpen:
        messages.error(request, "Only an open poll's deadline can be extended.")
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Deadline extended.")
    return redirect("surveys:poll-detail", poll.pk)


@require_POST
@permissions.require(permissions.can_manage_polls)
def invitation_revoke(request, poll_id: int, invitation_id: int):
    invitation = get_object_or_404(
        Invitation.objects.select_related("agency"), pk=invitation_id, poll_id=poll_id
    )
    if services.invitation_revoke(invitation=invitation, request=request):
        messages.success(request, f"The link sent to {invitation.email} no longer works.")
    return redirect("surveys:poll-detail", poll_id)


@never_cache
@require_GET
def reply(request, token: str):
    """The secret link from the email. No sign-in: the link itself is the credential.

    The reply form arrives with the next issue; the link already resolves to its invitation and
    says plainly when it can no longer be used.
    """
    invitation = (
        Invitation.objects.select_related("poll", "agency", "contact")
        .filter(token_hash=Invitation.hash_token(token))
        .first()
    )
    if invitation is None:
        return render(request, "surveys/reply_gone.html", {"reason": "unknown"}, status=404)
    poll = invitation.poll
    if invitation.revoked_at:
        reason = "revoked"
    elif poll.state == Poll.State.OPEN and poll.deadline <= timezone.now():
        reason = "closed"  # past the deadline, even before the beat job closes it
    elif poll.state == Poll.State.CANCELLED:
        reason = "cancelled"
    elif poll.state == Poll.State.CLOSED:
        reason = "closed"
    else:
        reason = ""
    if reason:
        return render(
            request,
            "surveys/reply_gone.html",
            {"reason": reason, "poll": poll, "invitation": invitation},
            status=410,
        )
    return render(request, "surveys/reply.html", {"invitation": invitation, "poll": poll})
