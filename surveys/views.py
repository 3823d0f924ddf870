"""The polls side for coordinators and officials: list, compose, preview, send, watch delivery
and answers, and act on an open poll (close, cancel, extend, remind, withdraw a link). The
answering side is in reply_views."""

from django.contrib import messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readiness import permissions

from . import chasing, compose, delivery, geo, selectors, waves
from .forms import ExtendForm, PollForm, targets_from
from .models import Invitation, Poll, Reply


def _delivery_counts(poll: Poll) -> dict:
    counts = poll.invitations.aggregate(
        total=Count("pk"),
        stuck=Count("pk", filter=delivery.invitations_stuck()),
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
    can_manage = permissions.can_manage_polls(request.user)
    return render(
        request,
        "surveys/poll_list.html",
        {"polls": polls, "can_manage": can_manage,
         "inbound_waiting": selectors.inbound_needing_attention().count() if can_manage else 0},
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_manage_polls)
def poll_create(request):
    form = PollForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        poll = compose.poll_create(form=form, request=request)
        messages.success(request, "Draft saved. Check the recipients, then send.")
        return redirect("surveys:poll-detail", poll.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "surveys/poll_form.html", {"form": form}, status=status)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_preview(request):
    """The live recipient preview beside the compose form (htmx posts the form as it stands)."""
    form = PollForm(request.POST)
    targets = targets_from(form)
    context = {"recipients": [], "unreachable": [], "reachable": 0, "officers": 0}
    if targets is not None:
        context.update(_recipient_context(list(selectors.recipients(targets=targets))))
        data = form.cleaned_data
        context["warnings"] = compose.send_warnings(
            recipients=context["recipients"], deadline=data.get("deadline"),
            reminder_hours=data.get("reminders") or (),
            needed_by=data.get("needed_by"),
            requesting_agency_id=getattr(data.get("requesting_agency"), "pk", None),
            teams_targeted=bool(targets.type_ids or targets.levels),
        )  # fmt: skip
    context["incomplete"] = targets is None
    data = getattr(form, "cleaned_data", {})
    if data.get("waves") and context["recipients"]:
        context["wave_plan"] = waves.plan(context["recipients"], data.get("wave_by"), data["waves"])
    return render(request, "surveys/poll_form.html#preview", context)


def _recipient_context(recipients: list) -> dict:
    for agency in recipients:
        agency.distance_km = geo.km(agency.distance_km)  # as the invitation will store it
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
        try:
            poll = compose.poll_update(form=form, request=request)
        except compose.PollNotDraft:
            messages.error(request, "This poll was sent meanwhile; it can no longer be edited.")
            return redirect("surveys:poll-detail", poll.pk)
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
        "max_attempts": delivery.MAX_ATTEMPTS,
        "show_contacts": permissions.can_view_contacts(request.user),
        "can_reopen": poll.state == Poll.State.CLOSED and poll.deadline > timezone.now(),
    }
    if poll.state == Poll.State.DRAFT:
        context.update(_recipient_context(list(selectors.poll_recipients(poll=poll))))
        targets = selectors.Targets.of(poll)
        context["warnings"] = compose.send_warnings(
            recipients=context["recipients"], deadline=poll.deadline,
            reminder_hours=poll.reminder_hours_before or (), needed_by=poll.needed_by,
            requesting_agency_id=poll.requesting_agency_id,
            teams_targeted=bool(targets.type_ids or targets.levels),
        )  # fmt: skip
        if poll.wave_rings:
            context["wave_plan"] = waves.plan(context["recipients"], poll.wave_by, poll.wave_rings)
    else:
        context["waves"] = list(poll.waves.select_related("decided_by"))
        context["has_pending"] = any(w.state == "pending" for w in context["waves"])
        replies = Reply.objects.filter(poll=poll, agency=OuterRef("agency"))
        context["invitations"] = (
            poll.invitations.select_related("agency", "contact")
            .annotate(
                stuck=Q(delivery.invitations_stuck()),
                reply_decision=Subquery(replies.values("decision")[:1]),
                reply_officers=Subquery(replies.values("officers")[:1]),
                reply_flagged=Subquery(replies.values("travel_flagged")[:1]),
            )
            .order_by("distance_km")
        )
        context.update(_feed_context(poll))
    if request.htmx:
        return render(request, "surveys/poll_detail.html#progress", context)
    return render(request, "surveys/poll_detail.html", context)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_send(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    if poll.state == Poll.State.DRAFT and not _confirmed(request):
        n = sum(1 for a in selectors.poll_recipients(poll=poll) if a.primary_contacts)
        return _confirm(
            request, poll, title=f"Send to {n} agenc{'y' if n == 1 else 'ies'}?",
            message=f"“{poll.title}” is emailed to {n} agenc{'y' if n == 1 else 'ies'} at once "
            f"({poll.get_purpose_display().lower()}). Sending cannot be undone; you can close "
            "or cancel the poll afterwards.",
            button=f"Send to {n} agenc{'y' if n == 1 else 'ies'} now",
        )  # fmt: skip
    try:
        count = compose.poll_send(poll=poll, request=request)
    except compose.PollNotDraft:
        messages.info(request, "This poll has already been sent.")
    except compose.PollNotSendable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Sending to {count} agenc{'y' if count == 1 else 'ies'}.")
    return redirect("surveys:poll-detail", poll.pk)


def _confirmed(request) -> bool:
    return request.POST.get("confirm") == "yes"


def _confirm(request, poll, *, title: str, message: str, button: str, danger: bool = False):
    """The step before an irreversible or outward action. With JavaScript the button asks in a
    dialog and sends confirm=yes itself; without it, this page asks."""
    skip = ("csrfmiddlewaretoken", "confirm")
    fields = [(k, v) for k, v in request.POST.items() if k not in skip]
    context = {
        "title": title, "message": message, "button": button, "danger": danger, "fields": fields,
        "back_url": reverse("surveys:poll-detail", args=[poll.pk]),
    }  # fmt: skip
    return render(request, "surveys/confirm.html", context)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_duplicate(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    copy = compose.poll_duplicate(poll=poll, request=request)
    messages.success(request, "A new draft, copied from that poll: check it, then send.")
    return redirect("surveys:poll-edit", copy.pk)


def _open_poll_action(
    request, poll_id: int, action, *, done: str, refused: str, confirm: dict | None = None
):
    """Run a service on an open poll and say how it went; every action returns to the poll.
    With `confirm` (title, message, button), the action is asked for first."""
    poll = get_object_or_404(Poll, pk=poll_id)
    if confirm and poll.state == Poll.State.OPEN and not _confirmed(request):
        return _confirm(request, poll, **confirm)
    try:
        result = action(poll=poll, request=request)
    except chasing.PollNotOpen:
        messages.error(request, refused)
    else:
        messages.success(request, done.format(result=result))
    return redirect("surveys:poll-detail", poll.pk)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_close(request, poll_id: int):
    return _open_poll_action(
        request, poll_id, chasing.poll_close,
        done="Poll closed: reply links no longer work.",
        refused="Only an open poll can be closed.",
        confirm={"title": "Close this poll now?",
                 "message": "Reply links stop working at once, and agencies that have not "
                 "answered can no longer answer. Answers given so far stay.",
                 "button": "Close now"},
    )  # fmt: skip


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_cancel(request, poll_id: int):
    return _open_poll_action(
        request, poll_id, chasing.poll_cancel,
        done="Poll cancelled: everyone asked is told to stand down.",
        refused="Only an open poll can be cancelled.",
        confirm={"title": "Cancel this poll?",
                 "message": "Everyone asked gets a stand-down email naming you, and reply links "
                 "stop working. This cannot be undone.",
                 "button": "Cancel poll and send stand-down", "danger": True},
    )  # fmt: skip


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_remind(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    try:
        reminded = chasing.poll_remind_silent(poll=poll, request=request)
    except chasing.PollNotOpen:
        messages.error(request, "Only an open poll's silent agencies can be reminded.")
    else:
        if reminded:
            messages.success(
                request, f"Reminder sent to {reminded} contact(s) whose agency has not answered."
            )
        else:
            messages.warning(request, chasing.why_nobody_was_reminded(poll=poll))
    return redirect("surveys:poll-detail", poll.pk)


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_extend(request, poll_id: int):
    poll = get_object_or_404(Poll, pk=poll_id)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the new deadline as a date and time.")
        return redirect("surveys:poll-detail", poll.pk)
    try:
        chasing.poll_extend(poll=poll, deadline=form.cleaned_data["deadline"], request=request)
    except chasing.PollNotOpen:
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
        Invitation.objects.select_related("agency", "poll"), pk=invitation_id, poll_id=poll_id
    )
    if invitation.revoked_at is None and not _confirmed(request):
        who = invitation.agency.name
        if permissions.can_view_contacts(request.user):
            who += f" ({invitation.email})"
        return _confirm(
            request, invitation.poll, title="Withdraw this link?",
            message=f"The link sent to {who} stops working at once; nothing it sends is "
            "recorded any more. Answers already given stay.",
            button="Withdraw the link", danger=True,
        )  # fmt: skip
    if chasing.invitation_revoke(invitation=invitation, request=request):
        messages.success(request, f"The link sent to {invitation.email} no longer works.")
    return redirect("surveys:poll-detail", poll_id)


@require_GET
@permissions.require(permissions.can_view_polls)
def reply_history(request, poll_id: int, agency_id: int):
    """One agency's answer to a poll, and every version of it: who, when, what changed."""
    reply = get_object_or_404(
        Reply.objects.select_related("poll__created_by", "agency", "updated_by")
        .prefetch_related("lines__team__team_type"),
        poll_id=poll_id, agency_id=agency_id,
    )  # fmt: skip
    versions = reply.versions.select_related("user", "invitation").order_by("-number")
    show_contacts = permissions.can_view_contacts(request.user)
    context = {"reply": reply, "poll": reply.poll, "agency": reply.agency, "versions": versions,
               "show_contacts": show_contacts, "hide_contacts": not show_contacts}  # fmt: skip
    return render(request, "surveys/reply_history.html", context)


@require_GET
@permissions.require(permissions.can_view_polls)
def reply_feed(request, poll_id: int):
    """The poll page's live feed of answers (htmx polls it while the poll is open)."""
    poll = get_object_or_404(Poll, pk=poll_id)
    return render(request, "surveys/poll_detail.html#feed", _feed_context(poll))


def _feed_context(poll: Poll) -> dict:
    return {
        "poll": poll,
        "feed": selectors.reply_feed(poll=poll),
        "answered": poll.replies.count(),
        "asked": poll.invitations.values("agency").distinct().count(),
    }
