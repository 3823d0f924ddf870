"""A commander asks their team members (the tally and the forward), and a member answers by
their personal link (no sign-in; the link reaches only that member's answer)."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from readiness import permissions

from . import member_waves, members, replies, tally
from .forms.members import AwayForm, ForwardForm, MemberAnswerForm
from .models import MemberAsk, MemberCall
from .reply_views import _my_invitation, unknown_link


@never_cache
@require_http_methods(["GET", "POST"])
@permissions.require(permissions.can_answer_for_agency)
def my_agency_members(request, poll_id: int):
    invitation = _my_invitation(request, poll_id)
    poll, agency = invitation.poll, invitation.agency
    form = ForwardForm(
        request.POST if request.method == "POST" else None,
        poll=poll,
        eligible=members.eligible(poll, agency),
        initial={"answer_by": members.default_answer_by(poll)},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["wanted"]:
                asked = member_waves.call_start(
                    poll=poll, agency=agency, wanted=data["wanted"],
                    answer_by=data["answer_by"], request=request,
                )  # fmt: skip
            else:
                asked = members.members_forward(
                    poll=poll, agency=agency, answer_by=data["answer_by"], request=request,
                    chosen=data["members"],
                )  # fmt: skip
        except members.AskClosed as exc:
            messages.error(request, f"Members cannot be asked: {exc.reason}.")
        else:
            if asked:
                messages.success(request, f"Asked {asked} member{'s' if asked != 1 else ''}.")
            else:
                messages.info(request, "Every active member of the targeted teams was asked.")
        return redirect("surveys:my-agency-members", poll.pk)
    tallies = tally.tally(poll=poll, agency=agency)
    return render(
        request,
        "surveys/members.html",
        {"poll": poll, "agency": agency, "form": form, "tallies": tallies,
         "open": not replies.reply_refusal(poll),
         "call": MemberCall.objects.filter(poll=poll, agency=agency).first()},
        status=422 if form.errors else 200,
    )  # fmt: skip


@never_cache
@require_GET
@permissions.require(permissions.can_answer_for_agency)
def my_agency_tally(request, poll_id: int):
    """The live tally on the commander's answer form: 204 while nothing changed."""
    invitation = _my_invitation(request, poll_id)
    poll, agency = invitation.poll, invitation.agency
    stamp = tally.stamp(poll=poll, agency=agency)
    if request.GET.get("stamp") == stamp:
        return HttpResponse(status=204)
    tallies = [t for t in tally.tally(poll=poll, agency=agency) if t.asks]
    context = {"poll": poll, "tallies": tallies, "tally_stamp": stamp}
    return render(request, "surveys/_member_tally.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def member_answer(request, token: str):
    ask = members.ask_by_token(token)
    if ask is None:
        return unknown_link(request)
    answering = request.method == "POST" and request.POST.get("action") != "away"
    # An answer is refused by the save itself when it is no longer taken (one query fewer).
    closed = "" if answering else members.ask_refusal(ask)
    initial = {"answer": ask.answer, "start": ask.start or MemberAsk.Start.STATION,
               "start_place": ask.start_place, "note": ask.note}  # fmt: skip
    if ask.depart_minutes is not None:
        initial["depart_other"] = ask.depart_minutes
    away_posted = request.method == "POST" and request.POST.get("action") == "away"
    form = MemberAnswerForm(
        request.POST if request.method == "POST" and not away_posted else None, initial=initial
    )
    if answering and not form.is_valid():
        closed = members.ask_refusal(ask)
    elif answering:
        try:
            ask = members.member_answer(ask=ask, data=form.cleaned_data)
        except members.AskClosed as exc:
            closed = exc.reason
        else:  # a short page that says what was recorded (and links back to change it)
            return render(request, "surveys/member_answered.html", {"ask": ask})
    away = AwayForm(  # on the page (and its own POST), not for an answer taken
        request.POST if away_posted else None,
        initial={"away_until": ask.member.away_until, "away_reason": ask.member.away_reason},
    )
    if away_posted and away.is_valid():
        members.member_away(ask=ask, until=away.cleaned_data["away_until"],
                            reason=away.cleaned_data["away_reason"])  # fmt: skip
        return redirect("surveys:member-answer", token)
    status = (
        410 if closed and request.method == "POST" and not away_posted
        else 422 if form.errors or away.errors else 200
    )  # fmt: skip
    return render(
        request,
        "surveys/member_answer.html",
        {"ask": ask, "form": form, "closed": closed, "away": away},
        status=status,
    )
