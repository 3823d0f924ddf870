"""A team member's answer by text (issue 19): matched by the member's number and their ask's
reply code (or their only open ask, without a code), parsed by sms_grammar.parse_member,
checked by the member form's own rules and saved by members.member_answer, like an answer by
link. The member is told by text what was recorded, or what was not understood and how to fix
it, with their personal link."""

from django.utils import timezone

from . import members, sms_grammar
from .forms.members import MemberAnswerForm
from .models import InboundMessage, Invitation, MemberAsk

OPEN = members.OPEN


def ask_for(sender: str, body: str, *, invited: bool) -> MemberAsk | None:
    """The member's ask this text answers, or None when it is not a member's answer (then it is
    an agency's, handled as before): with a code, the sender's ask holding it (an open one
    first); without, the sender's one open ask when they have no open agency invitation
    (`invited`: the caller has looked them up)."""
    if sms_grammar.parse_command_free(body) is None:
        return None  # HELP, STOP, START: the same for everyone
    code = sms_grammar.leading_code(body)
    asks = MemberAsk.objects.filter(member__mobile=sender).select_related(
        "poll", "agency", "team", "member__agency"
    )
    if code:
        # Open polls only: a member code of a closed poll may be the agency's code today. The
        # newest, sorted here (ordering a select_related query costs more than the query).
        found = asks.filter(reply_code=code, poll__state__in=OPEN).order_by()
        return max(found, key=lambda ask: (ask.asked_at, ask.pk), default=None)
    if invited:
        return None
    candidates = list(asks.filter(poll__state__in=OPEN, state=MemberAsk.State.SENT)[:2])
    return candidates[0] if len(candidates) == 1 else None


def answer(message: InboundMessage, ask: MemberAsk, now) -> str:
    message.member_ask = ask
    link = members._link(ask, now)
    try:
        parsed = sms_grammar.parse_member(message.body)
    except sms_grammar.ParseError as exc:
        return f"Not understood: {exc} Or answer here: {link}"
    form = MemberAnswerForm({
        "answer": parsed.answer, "depart_other": parsed.depart_minutes, "note": parsed.note,
        "start": ask.start or MemberAsk.Start.STATION, "start_place": ask.start_place,
    })  # fmt: skip
    if not form.is_valid():
        errors = "; ".join(e for errors in form.errors.values() for e in errors)
        return f"Not recorded: {errors} Fix and send again, or answer here: {link}"
    try:
        saved = members.member_answer(ask=ask, data=form.cleaned_data, now=now, via="sms")
    except members.AskClosed as exc:
        message.outcome = InboundMessage.Outcome.REFUSED
        return f"Not recorded: {exc.reason}"
    message.outcome = InboundMessage.Outcome.APPLIED
    if saved.answer == MemberAsk.Answer.NOT_WILLING:
        said = "NO, you would not go."
    else:
        said = (
            f"{'YES with conditions' if saved.answer == MemberAsk.Answer.CONDITIONAL else 'YES'}: "
            f"leave in {saved.depart_minutes} min, arrive in about {saved.arrival} min "
            f"(from {saved.travel_from})."
        )
    deadline = timezone.localtime(saved.answer_by)
    return (
        f"Recorded for {saved.agency.name}, {saved.team.name}: {said} Change it by texting again "
        f"before {deadline:%a %H:%M}, or: {link}"
    )


def forward(message: InboundMessage, invitation: Invitation | None, now) -> str:
    """Text "<code> ASK" from an agency's contact (`invitation`, matched by number and code):
    their team members are asked, as from the page, with the default deadline for members."""
    if invitation is None:
        message.outcome = InboundMessage.Outcome.UNMATCHED
        return message.response
    message.invitation, message.outcome = invitation, InboundMessage.Outcome.COMMAND
    poll, agency = invitation.poll, invitation.agency
    answer_by = members.default_answer_by(poll, now)
    try:
        asked = members.members_forward(
            poll=poll, agency=agency, answer_by=answer_by,
            by=f"{invitation.contact.name} by text",
        )  # fmt: skip
    except members.AskClosed as exc:
        return f"Members not asked: {exc.reason}."
    if not asked:
        return (
            "Nobody new to ask: every active member of the targeted teams was asked already, "
            "or the rosters are empty."
        )
    return (
        f"Asked {asked} member{'s' if asked != 1 else ''} of {agency.name}'s teams; they answer "
        f"by {timezone.localtime(answer_by):%a %H:%M}. Their answers fill your form when you "
        "sign in to answer."
    )
