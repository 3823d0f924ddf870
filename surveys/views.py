from django.conf import settings
from django.contrib import messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readiness import permissions, ratelimit

from . import chasing, compose, delivery, geo, replies, selectors
from .forms import ExtendForm, PollForm, ReplySubmission, targets_from
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
        poll = compose.poll_create(form=form, request=request)
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
    }
    if poll.state == Poll.State.DRAFT:
        context.update(_recipient_context(list(selectors.poll_recipients(poll=poll))))
    else:
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
    try:
        count = compose.poll_send(poll=poll, request=request)
    except compose.PollNotDraft:
        messages.info(request, "This poll has already been sent.")
    except compose.PollNotSendable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Sending to {count} agenc{'y' if count == 1 else 'ies'}.")
    return redirect("surveys:poll-detail", poll.pk)


def _open_poll_action(request, poll_id: int, action, *, done: str, refused: str):
    """Run a service on an open poll and say how it went; every action returns to the poll."""
    poll = get_object_or_404(Poll, pk=poll_id)
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
    )  # fmt: skip


@require_POST
@permissions.require(permissions.can_manage_polls)
def poll_cancel(request, poll_id: int):
    return _open_poll_action(
        request, poll_id, chasing.poll_cancel,
        done="Poll cancelled: everyone asked is told to stand down.",
        refused="Only an open poll can be cancelled.",
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
        Invitation.objects.select_related("agency"), pk=invitation_id, poll_id=poll_id
    )
    if chasing.invitation_revoke(invitation=invitation, request=request):
        messages.success(request, f"The link sent to {invitation.email} no longer works.")
    return redirect("surveys:poll-detail", poll_id)


# Replies ----------------------------------------------------------------------------------------


def _gone(request, reason: str, poll=None, invitation=None):
    """The clear page for a link or poll that no longer takes answers; nothing is saved."""
    status = 404 if reason == "unknown" else 410
    context = {"reason": reason, "poll": poll, "invitation": invitation}
    return render(request, "surveys/reply_gone.html", context, status=status)


def _invitation_for(request, token: str):
    """(invitation, None) for a live link, or (None, response) saying why it cannot be used.

    Guessing is rate limited: unknown links count against the client's address, and past the
    limit an unknown link is refused without saying whether it exists. A valid link always
    works: responders behind one carrier NAT or an agency's proxy share an address, and one
    mistyped link must not lock the others out.
    """
    limit, window = settings.REPLY_LINK_RATE_LIMIT, settings.REPLY_LINK_RATE_WINDOW
    invitation = selectors.invitation_by_token(token)
    if invitation is None:
        if ratelimit.exceeded(request, "reply-link", limit=limit, window=window):
            context = {"reason": "limited"}
            return None, render(request, "surveys/reply_gone.html", context, status=429)
        ratelimit.hit(request, "reply-link", window=window)
        return None, _gone(request, "unknown")
    reason = replies.reply_refusal(invitation.poll, invitation)
    if reason:
        return None, _gone(request, reason, invitation.poll, invitation)
    return invitation, None


def _reply_form(request, *, poll, agency, invitation, link: bool, done_url: str, confirm_url: str):
    """The reply form, shared by the emailed link and the signed-in commander's page.

    `invitation` gives the travel estimate; with `link` it is also the credential used, recorded
    with the version (and re-checked for withdrawal as the answer is saved)."""
    reply = Reply.objects.filter(poll=poll, agency=agency).prefetch_related("lines").first()
    teams, targeted = selectors.reply_teams(poll=poll, agency=agency, reply=reply)
    kwargs = {"poll": poll, "agency": agency, "teams": teams, "targeted_ids": targeted,
              "estimate": invitation.travel_minutes}  # fmt: skip
    submission = ReplySubmission(request.POST or None, reply=reply, **kwargs)
    conflict, status = None, 200
    if request.method == "POST":
        status = 422
        if submission.is_valid():
            try:
                version = replies.reply_submit(
                    poll=poll, agency=agency, answer=submission.answer(),
                    lines=submission.line_data(),
                    base_version=submission.form.cleaned_data["version"],
                    invitation=invitation if link else None,
                    user=request.user, request=request, confirm_url=confirm_url,
                )  # fmt: skip
            except replies.ReplyRefused as exc:
                return _gone(request, exc.reason, poll, invitation)
            except replies.ReplyConflict as exc:
                # Keep what they typed, show what is stored now, and let them submit again.
                conflict, status = exc.current, 409
                data = request.POST.copy()
                data["version"] = str(conflict.version)
                submission = ReplySubmission(data, reply=conflict, **kwargs)
                submission.is_valid()
            else:
                # None: the same answer again; the done page says nothing changed.
                return redirect(done_url if version else f"{done_url}?unchanged=1")
    context = {
        "poll": poll,
        "agency": agency,
        "invitation": invitation,
        "reply": reply,
        "submission": submission,
        "conflict": conflict,
        "deadline": timezone.localtime(poll.deadline),
    }
    return render(request, "surveys/reply.html", context, status=status)


def _reply_done(request, *, poll, agency, change_url: str):
    reply = (
        Reply.objects.filter(poll=poll, agency=agency)
        .select_related("updated_by", "updated_via")
        .prefetch_related("lines__team__team_type")
        .first()
    )
    context = {"poll": poll, "agency": agency, "reply": reply, "change_url": change_url,
               "deadline": timezone.localtime(poll.deadline),
               "unchanged": request.GET.get("unchanged") == "1"}  # fmt: skip
    return render(request, "surveys/reply_done.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def reply(request, token: str):
    """The secret link from the email. No sign-in: the link itself is the credential, and it
    reaches only its own agency's answer to its own poll."""
    invitation, refused = _invitation_for(request, token)
    if refused:
        return refused
    url = reverse("surveys:reply", args=[token])
    return _reply_form(
        request, poll=invitation.poll, agency=invitation.agency, invitation=invitation, link=True,
        done_url=reverse("surveys:reply-done", args=[token]),
        confirm_url=settings.SITE_URL + url,
    )  # fmt: skip


@never_cache
@require_GET
def reply_done(request, token: str):
    invitation, refused = _invitation_for(request, token)
    if refused:
        return refused
    return _reply_done(
        request, poll=invitation.poll, agency=invitation.agency,
        change_url=reverse("surveys:reply", args=[token]),
    )  # fmt: skip


@require_GET
@permissions.require(permissions.can_answer_for_agency)
def my_agency(request):
    now = timezone.now()
    polls = selectors.agency_polls(agency=request.user.agency, now=now)
    return render(request, "surveys/my_agency.html", {"polls": polls, "now": now})


def _my_invitation(request, poll_id: int) -> Invitation:
    """The user's agency's invitation to this poll (404 when the agency was not asked)."""
    invitation = selectors.agency_invitation(poll_id=poll_id, agency_id=request.user.agency_id)
    if invitation is None:
        raise Http404("Your agency was not asked in this poll.")
    return invitation


@never_cache
@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_answer_for_agency)
def my_agency_reply(request, poll_id: int):
    invitation = _my_invitation(request, poll_id)
    poll = invitation.poll
    url = reverse("surveys:my-agency-reply", args=[poll.pk])
    reason = replies.reply_refusal(poll)
    if reason:
        if request.method == "POST":
            return _gone(request, reason, poll)
        return _reply_done(request, poll=poll, agency=invitation.agency, change_url="")
    return _reply_form(
        request, poll=poll, agency=invitation.agency, invitation=invitation, link=False,
        done_url=reverse("surveys:my-agency-reply-done", args=[poll.pk]),
        confirm_url=settings.SITE_URL + url,
    )  # fmt: skip


@never_cache
@require_GET
@permissions.require(permissions.can_answer_for_agency)
def my_agency_reply_done(request, poll_id: int):
    invitation = _my_invitation(request, poll_id)
    poll = invitation.poll
    open_ = not replies.reply_refusal(poll)
    change_url = reverse("surveys:my-agency-reply", args=[poll.pk]) if open_ else ""
    return _reply_done(request, poll=poll, agency=invitation.agency, change_url=change_url)


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
