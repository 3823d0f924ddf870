"""The answering side: the reply form by emailed link (no sign-in) and a signed-in commander's
own agency's polls. Every answer is saved through surveys.replies."""

import contextlib

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from readiness import permissions, ratelimit

from . import replies, selectors, tally
from .forms import ReplySubmission
from .models import Invitation, Reply


def _gone(request, reason: str, poll=None, invitation=None):
    """The clear page for a link or poll that no longer takes answers; nothing is saved."""
    status = 404 if reason == "unknown" else 410
    context = {"reason": reason, "poll": poll, "invitation": invitation}
    return render(request, "surveys/reply_gone.html", context, status=status)


def unknown_link(request):
    """The page for a secret link (an agency's or a member's) that finds nothing: it counts
    against the client's address, and past the limit says nothing of whether links exist."""
    limit, window = settings.REPLY_LINK_RATE_LIMIT, settings.REPLY_LINK_RATE_WINDOW
    if ratelimit.exceeded(request, "reply-link", limit=limit, window=window):
        return render(request, "surveys/reply_gone.html", {"reason": "limited"}, status=429)
    ratelimit.hit(request, "reply-link", window=window)
    return _gone(request, "unknown")


def _invitation_for(request, token: str):
    """(invitation, None) for a live link, or (None, response) saying why it cannot be used.

    Guessing is rate limited: unknown links count against the client's address, and past the
    limit an unknown link is refused without saying whether it exists. A valid link always
    works: responders behind one carrier NAT or an agency's proxy share an address, and one
    mistyped link must not lock the others out.
    """
    invitation = selectors.invitation_by_token(token, page=request.method == "GET")
    if invitation is None:
        return None, unknown_link(request)
    reason = replies.reply_refusal(invitation.poll, invitation)
    if reason:
        return None, _gone(request, reason, invitation.poll, invitation)
    return invitation, None


def _reply_form(request, *, poll, agency, invitation, link: bool, done_url: str):
    """The reply form, shared by the emailed link and the signed-in commander's page.

    `invitation` gives the travel estimate; with `link` it is also the credential used, recorded
    with the version (and re-checked for withdrawal as the answer is saved)."""
    # A first answer posted (from a form built when nothing was stored) does not read what is
    # stored: its insert finds an answer saved meanwhile itself (a conflict, or the same answer
    # again). Read for every other request, and for a first answer the form refuses (checked
    # again with the stored answer, below).
    first = request.method == "POST" and request.POST.get("version") == "0"
    reply = None if first else selectors.stored_reply(poll=poll, agency=agency)
    kwargs = {"poll": poll, "agency": agency, "estimate": invitation.travel_minutes,
              **_teams(poll, agency, reply)}  # fmt: skip
    # A signed-in commander who asked the members: the lines start from what they said.
    targeted_teams = [t for t in kwargs["teams"] if t.pk in kwargs["targeted_ids"]]
    tallies = [] if link else [
        t for t in tally.tally(poll=poll, agency=agency, teams=targeted_teams) if t.asks
    ]  # fmt: skip
    kwargs["suggested"] = tally.suggested_lines(tallies)
    submission = ReplySubmission(request.POST or None, reply=reply, **kwargs)
    conflict, status = None, 200
    if request.method == "POST":
        status = 422
        valid = submission.is_valid()
        if first and not valid and (reply := selectors.stored_reply(poll=poll, agency=agency)):
            # Checked again against the stored answer, whose teams the form may name (one
            # since retired): saved, it is then a conflict or the same answer again.
            kwargs.update(_teams(poll, agency, reply))
            submission = ReplySubmission(request.POST, reply=reply, **kwargs)
            valid = submission.is_valid()
        if valid:
            lines = submission.line_data()
            try:
                # The answer and the members it counts, together (one transaction).
                with transaction.atomic() if tallies else contextlib.nullcontext():
                    version = replies.reply_submit(
                        poll=poll, agency=agency, answer=submission.answer(),
                        lines=tally.with_backing(tallies, lines),
                        base_version=submission.form.cleaned_data["version"], stored=reply,
                        invitation=invitation if link else None,
                        user=request.user, request=request,
                        channel="link" if link else "form",
                        member_tally=tally.tally_record(tallies, lines),
                    )  # fmt: skip
                    if version and tallies:
                        tally.rollup_commit(poll=poll, agency=agency, tallies=tallies, lines=lines)
            except replies.ReplyRefused as exc:
                return _gone(request, exc.reason, poll, invitation)
            except replies.ReplyConflict as exc:
                # Keep what they typed, show what is stored now, and let them submit again.
                conflict, status = exc.current, 409
                data = request.POST.copy()
                data["version"] = str(conflict.version)
                kwargs.update(_teams(poll, agency, conflict))  # and any team of the stored one
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
        "tallies": tallies,
        "tally_stamp": tally.stamp(poll=poll, agency=agency) if tallies else "",
        "suggested": kwargs["suggested"],
    }
    return render(request, "surveys/reply.html", context, status=status)


def _teams(poll, agency, reply) -> dict:
    teams, targeted = selectors.reply_teams(poll=poll, agency=agency, reply=reply)
    return {"teams": teams, "targeted_ids": targeted}


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
    return _reply_form(
        request, poll=invitation.poll, agency=invitation.agency, invitation=invitation, link=True,
        done_url=reverse("surveys:reply-done", args=[token]),
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
    reason = replies.reply_refusal(poll)
    if reason:
        if request.method == "POST":
            return _gone(request, reason, poll)
        return _reply_done(request, poll=poll, agency=invitation.agency, change_url="")
    return _reply_form(
        request, poll=poll, agency=invitation.agency, invitation=invitation, link=False,
        done_url=reverse("surveys:my-agency-reply-done", args=[poll.pk]),
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
