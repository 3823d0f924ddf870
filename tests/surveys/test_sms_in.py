"""Answers by text: the signed inbound webhook, matching by code and number, the same reply
service as the form (versions, audit, dashboards), replies that say what happened, replays,
HELP/STOP/START, and bad input that saves nothing wrong."""

import html
import re

import pytest
from django.urls import reverse

from agencies.models import Contact
from readiness.models import AuditEvent
from surveys import compose
from surveys.models import InboundMessage, Invitation, InvitationLink, Poll, Reply, ReplyVersion

from ..factories import AgencyFactory, ContactFactory, SpecialTeamFactory, TeamTypeFactory
from .factories import PollFactory

pytestmark = pytest.mark.django_db

MOBILE = "+13125550142"


def said(response) -> str:
    match = re.search(r"<Message>(.*)</Message>", response.content.decode(), re.S)
    return html.unescape(match[1]) if match else ""


@pytest.fixture
def swat(db):
    return TeamTypeFactory(code="swat-sms", name="SWAT")


def texted(swat, *, teams=1, mobile=MOBILE, **poll_kwargs):
    agency = AgencyFactory()
    for n in range(teams):
        SpecialTeamFactory(agency=agency, team_type=swat, members=24, name=f"Team {'AB'[n]}")
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY, mobile=mobile, channels="sms",
                   name="Dana Ruiz", title="Chief")  # fmt: skip
    poll = PollFactory(target_agencies=[agency], **poll_kwargs)
    compose.poll_send(poll=poll)
    invitation = Invitation.objects.get(poll=poll)
    Invitation.objects.filter(pk=invitation.pk).update(state=Invitation.State.SENT)
    return poll, agency, invitation


def test_a_yes_by_text_is_the_same_answer_as_by_form(client, coordinator, swat, sms_provider):
    poll, agency, invitation = texted(swat)
    code = invitation.reply_code
    response = sms_provider.post_inbound(client, MOBILE, f"{code} Y 12 45")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    text = said(response)
    assert text.startswith(f"Recorded for {agency.name}: YES: 12 Team A, leave in 45 min")
    assert "/r/" in text  # a link to the full form
    reply = Reply.objects.get(poll=poll, agency=agency)
    assert (reply.decision, reply.officers, reply.version) == ("available", 12, 1)
    assert reply.authorised_by_name == "Dana Ruiz" and reply.authorised_by_rank == "Chief"
    line = reply.lines.get()
    assert (line.depart_minutes, line.travel_minutes) == (45, invitation.travel_minutes)
    assert line.arrival_minutes == 45 + invitation.travel_minutes
    version = ReplyVersion.objects.get(reply=reply)
    assert version.channel == "sms" and version.invitation == invitation
    assert AuditEvent.objects.filter(action="reply.create", object_id=str(reply.pk)).exists()
    message = InboundMessage.objects.get()
    assert (message.outcome, message.version) == ("applied", version)
    # The link in the answer opens the form on the recorded answer.
    page = client.get(re.search(r"https?://\S+(/r/\S+/)", text)[1])
    assert page.status_code == 200
    # The same answer everywhere, with its channel: figures, history, CSV, API.
    client.force_login(coordinator)
    summary = client.get(reverse("poll-dashboard-summary", args=[poll.pk])).json()
    assert summary["headline"]["officers_available"] == 12
    history = client.get(reverse("surveys:reply-history", args=[poll.pk, agency.pk])).text
    assert "Text message" in history
    csv_text = b"".join(client.get(reverse("poll-dashboard-csv", args=[poll.pk]))).decode()
    assert "Text message" in csv_text.splitlines()[1]
    api = client.get(reverse("api:reply-detail", args=[reply.pk])).json()
    assert api["channel"] == "sms"


def test_an_answer_by_text_reads_only_what_it_saves(client, swat, sms_provider, deferred_loads):
    """The sender's open invitations are loaded with 23 of their 100 columns (and their
    poll's, agency's and contact's): an answer, a change and a mistake read no other."""
    fetched = deferred_loads
    _poll, agency, invitation = texted(swat)
    code = invitation.reply_code
    texts = (f"{code} Y 12 45", f"{code} N all committed", f"{code} Y 99 45", f"{code} maybe")
    told = [said(sms_provider.post_inbound(client, MOBILE, body)) for body in texts]
    assert told[0].startswith(f"Recorded for {agency.name}") and "UNAVAILABLE" in told[1]
    assert told[2].startswith("Not recorded") and told[3].startswith("Not understood")
    assert fetched == []


def test_a_first_answer_by_text_reads_no_stored_answer_and_one_unstamped_is_answered_over(
    client, swat, sms_provider
):
    """An invitation not stamped with its agency's first answer means none is stored: the text
    is saved without reading one. An answer stored without the stamp (a moment ago, by another
    way in) is found as the text is saved, and the text goes over it as over any other."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    poll, _agency, invitation = texted(swat)
    code = invitation.reply_code
    with CaptureQueriesContext(connection) as queries:
        first = said(sms_provider.post_inbound(client, MOBILE, f"{code} Y 12 45"))
    assert first.startswith("Recorded")
    assert not [q for q in queries if q["sql"].startswith('SELECT "surveys_reply"."id"')]
    assert Invitation.objects.get(pk=invitation.pk).replied_at is not None

    unstamped = Invitation.objects.filter(pk=invitation.pk)
    unstamped.update(replied_at=None)
    assert said(sms_provider.post_inbound(client, MOBILE, f"{code} Y 12 45")).startswith(
        "Nothing changed"
    )
    unstamped.update(replied_at=None)
    changed = said(sms_provider.post_inbound(client, MOBILE, f"{code} N all committed"))
    assert changed.startswith("Recorded") and "UNAVAILABLE" in changed
    reply = Reply.objects.get(poll=poll)
    assert (reply.decision, reply.version) == ("unavailable", 2)
    assert not InboundMessage.objects.filter(outcome="refused").exists()


@pytest.mark.services
def test_on_postgresql_a_first_text_is_saved_with_its_answer_in_one_statement(
    postgres, client, swat, sms_provider
):
    """The text's message and the link its reply gives go in with the answer, its version and
    audit: one statement writes it all (prepared: EXECUTE), and nothing else writes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    poll, agency, invitation = texted(swat)
    with CaptureQueriesContext(connection) as queries:
        told = said(sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} Y 7 20"))
    assert told.startswith(f"Recorded for {agency.name}: YES: 7 Team A")
    statements = [q["sql"] for q in queries]
    writes = [s for s in statements if s.startswith("EXECUTE readiness_") and "lookup" not in s]
    assert len(writes) == 1, statements
    assert not [s for s in statements if s.startswith(("INSERT", "UPDATE", "WITH"))], statements
    message = InboundMessage.objects.get()
    version = ReplyVersion.objects.get(reply__poll=poll)
    assert (message.outcome, message.version, message.invitation) == (
        "applied",
        version,
        invitation,
    )
    assert "[hidden]" in message.response and InvitationLink.objects.count() == 1
    page = client.get(re.search(r"https?://\S+(/r/\S+/)", told)[1])  # the link is saved
    assert page.status_code == 200


@pytest.mark.services
@pytest.mark.django_db(transaction=True)  # as the webhook runs: outside any transaction
def test_outside_a_transaction_a_first_text_commits_by_itself_and_the_rest_go_in_one(
    postgres, client, swat, sms_provider
):
    """A first answer's one statement commits by itself (no BEGIN, COMMIT or savepoint); a
    change, a command, a refusal and a replayed message id are handled in a transaction, and
    a first answer that cannot be written in one statement writes nothing before that."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from surveys import selectors

    def post(body, sid=""):
        with CaptureQueriesContext(connection) as queries:
            told = said(sms_provider.post_inbound(client, MOBILE, body, sid=sid))
        return told, [q["sql"] for q in queries]

    poll, agency, invitation = texted(swat)
    code = invitation.reply_code
    told, sql = post(f"{code} Y 7 20", sid="SMalone1")
    assert told.startswith(f"Recorded for {agency.name}: YES: 7 Team A")
    assert not [s for s in sql if s in ("BEGIN", "COMMIT") or "SAVEPOINT" in s], sql
    assert post(f"{code} Y 7 20", sid="SMalone1")[0] == ""  # the same message again
    told, sql = post(f"{code} N all committed")
    assert told.startswith("Recorded") and "UNAVAILABLE" in told and "BEGIN" in sql
    looked_up = [s for s in sql if s.startswith(f"EXECUTE {selectors._OPEN_TEXTS.name}(")]
    assert len(looked_up) == 1  # the sender's invitations, read once for both tries
    assert post("HELP")[0].startswith("Readiness mutual-aid polls")
    assert Reply.objects.get(poll=poll).version == 2

    closed, _, closed_invitation = texted(swat, mobile="+13125550143")
    Poll.objects.filter(pk=closed.pk).update(state=Poll.State.CLOSED)
    told = said(sms_provider.post_inbound(client, "+13125550143",
                                          f"{closed_invitation.reply_code} Y 7 20"))  # fmt: skip
    assert told.startswith("The poll with code")
    assert not Reply.objects.filter(poll=closed).exists()

    other, _, first_invitation = texted(swat, mobile="+13125550144")
    sms_provider.post_inbound(client, "+13125550144", "HELP", sid="SMalone2")
    body = f"{first_invitation.reply_code} Y 7 20"
    told = said(sms_provider.post_inbound(client, "+13125550144", body, sid="SMalone2"))
    assert told == "" and not Reply.objects.filter(poll=other).exists()
    assert InboundMessage.objects.filter(message_id="SMalone2").get().outcome == "command"
    assert InboundMessage.objects.count() == 5  # one per message id, none twice


def test_a_first_answer_under_a_message_id_already_taken_saves_nothing(client, swat, sms_provider):
    """The message's insert is part of the answer's: when its id was taken (by a text that
    was no answer), the answer, its version, audit and link go too."""
    _poll, _agency, invitation = texted(swat)
    sms_provider.post_inbound(client, MOBILE, "HELP", sid="SMtaken1")
    events = AuditEvent.objects.count()
    again = sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} Y 7 20",
                                      sid="SMtaken1")  # fmt: skip
    assert again.status_code == 200 and said(again) == ""
    assert not Reply.objects.exists() and not ReplyVersion.objects.exists()
    assert not InvitationLink.objects.exists()
    assert InboundMessage.objects.get().outcome == "command"
    assert Invitation.objects.get(pk=invitation.pk).replied_at is None
    assert AuditEvent.objects.count() == events + 1  # sms.replayed, and no reply.create


def test_a_replayed_text_is_one_answer(client, swat, sms_provider):
    poll, _agency, invitation = texted(swat)
    body = f"{invitation.reply_code} Y 12 45"
    first = sms_provider.post_inbound(client, MOBILE, body, sid="SMreplay1")
    again = sms_provider.post_inbound(client, MOBILE, body, sid="SMreplay1")
    assert said(first).startswith("Recorded") and said(again) == ""
    assert Reply.objects.get(poll=poll).version == 1
    assert InboundMessage.objects.count() == 1
    assert AuditEvent.objects.filter(action="sms.replayed").count() == 1


def test_a_late_replay_of_an_earlier_text_takes_back_all_it_did(client, swat, sms_provider):
    """A provider's retry is not looked for before the text is handled: handled again, its
    message's insert fails last and takes back its answer, its links and its audit, even
    when the answer has changed since (re-applied, it would save the old answer again)."""
    poll, _agency, invitation = texted(swat)
    code = invitation.reply_code
    sms_provider.post_inbound(client, MOBILE, f"{code} Y 12 45", sid="SMlate1")
    sms_provider.post_inbound(client, MOBILE, f"{code} N all committed", sid="SMlate2")
    kept = (ReplyVersion.objects.count(), InvitationLink.objects.count(),
            AuditEvent.objects.exclude(action="sms.replayed").count())  # fmt: skip
    again = sms_provider.post_inbound(client, MOBILE, f"{code} Y 12 45", sid="SMlate1")
    assert again.status_code == 200 and said(again) == ""
    reply = Reply.objects.get(poll=poll)
    assert (reply.decision, reply.version) == ("unavailable", 2)
    assert (ReplyVersion.objects.count(), InvitationLink.objects.count(),
            AuditEvent.objects.exclude(action="sms.replayed").count()) == kept  # fmt: skip
    assert InboundMessage.objects.count() == 2


def test_changing_the_answer_by_text_makes_a_new_version_and_same_again_changes_nothing(
    client, swat, sms_provider
):
    poll, _, invitation = texted(swat)
    code = invitation.reply_code
    sms_provider.post_inbound(client, MOBILE, f"{code} Y 12 45")
    changed = said(sms_provider.post_inbound(client, MOBILE, f"{code} N all committed"))
    assert "UNAVAILABLE" in changed
    same = said(sms_provider.post_inbound(client, MOBILE, f"{code} no: all committed"))
    assert same.startswith("Nothing changed")
    reply = Reply.objects.get(poll=poll)
    assert (reply.decision, reply.decline_reason, reply.version) == (
        "unavailable",
        "all committed",
        2,
    )


def test_unsigned_or_forged_texts_are_refused_and_audited(client, swat, sms_provider):
    _poll, _, invitation = texted(swat)
    forged = sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} Y 12 45",
                                       token="wrong")  # fmt: skip
    bare = client.post(reverse("surveys:sms-inbound"), {"From": MOBILE, "Body": "Y 12 45"})
    assert forged.status_code == bare.status_code == 403
    assert not Reply.objects.exists() and not InboundMessage.objects.exists()
    assert AuditEvent.objects.filter(action="sms.refused").count() == 2


def test_the_code_alone_does_not_answer_for_another_number(client, swat, sms_provider):
    _poll, _, invitation = texted(swat)
    text = said(sms_provider.post_inbound(client, "+13125550199", f"{invitation.reply_code} Y 5 5"))
    assert text == f"No open poll has code {invitation.reply_code} for this number."
    assert not Reply.objects.exists()
    assert InboundMessage.objects.get().outcome == "unmatched"


@pytest.mark.parametrize(
    ("sent_as", "stop"),
    [("+49015112345678", False), ("+49 151 1234 5678", False), ("+49015112345678", True)],
)
def test_a_number_sent_otherwise_than_stored_is_matched_as_stored(
    client, swat, sms_provider, sent_as, stop
):
    """E.164 as stored is looked up as it comes; anything else (a trunk 0 kept, spaces) is
    parsed first, for answers and commands alike, and kept as stored."""
    poll, agency, invitation = texted(swat, mobile="+4915112345678")
    body = "STOP" if stop else f"{invitation.reply_code} Y 6 20"
    text = said(sms_provider.post_inbound(client, sent_as, body))
    if stop:
        assert text.startswith("You will get no more texts")
        assert Contact.objects.get(agency=agency).sms_stopped_at is not None
    else:
        assert text.startswith(f"Recorded for {agency.name}: YES: 6 Team A")
        assert Reply.objects.get(poll=poll, agency=agency).officers == 6
    assert InboundMessage.objects.get().sender == "+4915112345678"


def test_with_one_open_poll_the_code_may_be_left_out_with_two_it_is_asked_for(
    client, swat, sms_provider
):
    poll, agency, invitation = texted(swat)
    assert said(sms_provider.post_inbound(client, MOBILE, "we can send 8 in an hour")).startswith(
        "Recorded"
    )
    assert Reply.objects.get(poll=poll).lines.get().depart_minutes == 60
    other = PollFactory(target_agencies=[agency], title="Second poll")
    compose.poll_send(poll=other)
    second = Invitation.objects.get(poll=other)
    text = said(sms_provider.post_inbound(client, MOBILE, "Y 4 20"))
    assert text.startswith("Several polls are open: start the answer with its code.")
    assert second.reply_code in text and invitation.reply_code in text
    assert not Reply.objects.filter(poll=other).exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{code} Y 30 45", "At most 24: the team has 24 members"),
        ("{code} Y 12 99999", "At most 4320 minutes"),
        ("{code} Y 12", "How soon can the 12 officers leave?"),
        ("{code} maybe later", "Not understood"),
        ("", "The text was empty"),
        ("{code} C 12 45", "Say the conditions"),
    ],
)
def test_bad_answers_save_nothing_and_say_how_to_fix_them(
    client, swat, sms_provider, body, expected
):
    _poll, _, invitation = texted(swat)
    text = said(sms_provider.post_inbound(client, MOBILE, body.format(code=invitation.reply_code)))
    assert expected in text, text
    assert "/r/" in text  # and the form's link
    assert not Reply.objects.exists()
    assert InboundMessage.objects.get().outcome == "not_understood"


def test_per_team_answers_by_letter(client, swat, sms_provider):
    _poll, _agency, invitation = texted(swat, teams=2)
    assert "A=Team A, B=Team B" in sms_provider_body(invitation)
    code = invitation.reply_code
    unclear = said(sms_provider.post_inbound(client, MOBILE, f"{code} Y 12 45"))
    assert "say which team" in unclear and "A = Team A" in unclear
    done = said(sms_provider.post_inbound(client, MOBILE, f"{code} Y A 8 30 B 4 45"))
    assert done.startswith("Recorded")
    lines = {x.team.name: (x.officers, x.depart_minutes) for x in Reply.objects.get().lines.all()}
    assert lines == {"Team A": (8, 30), "Team B": (4, 45)}


def sms_provider_body(invitation) -> str:
    from surveys.channels import sms

    invitation = sms.prefetch(Invitation.objects.filter(pk=invitation.pk)).get()
    [(_, text)] = sms.build([invitation])
    return text.body


def test_closed_polls_and_withdrawn_links_refuse_with_the_reason(client, swat, sms_provider):
    poll, _, invitation = texted(swat)
    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=poll.created_at)
    text = said(sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} Y 12 45"))
    assert text == "Not recorded: this invitation was withdrawn by the coordinator."
    Poll.objects.filter(pk=poll.pk).update(state=Poll.State.CLOSED)
    text = said(sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} Y 12 45"))
    assert "no longer takes answers: it is closed" in text
    assert not Reply.objects.exists()


def test_help_stop_and_start(client, swat, sms_provider):
    _poll, agency, _ = texted(swat)
    assert "<code> Y <officers>" in said(sms_provider.post_inbound(client, MOBILE, "HELP"))
    assert "no more texts" in said(sms_provider.post_inbound(client, MOBILE, "STOP"))
    contact = Contact.objects.get(mobile=MOBILE)
    assert contact.sms_stopped_at is not None and not contact.texts
    other = PollFactory(target_agencies=[agency])
    compose.poll_send(poll=other)
    assert [i.channel for i in Invitation.objects.filter(poll=other)] == ["email"]
    assert "on again" in said(sms_provider.post_inbound(client, MOBILE, "start"))
    contact.refresh_from_db()
    assert contact.texts


def test_what_was_not_understood_waits_for_a_coordinator(client, coordinator, swat, sms_provider):
    _poll, agency, invitation = texted(swat)
    sms_provider.post_inbound(client, MOBILE, "call me <b>now</b>")
    sms_provider.post_inbound(client, "+13125550199", "Y 4 20")  # a number never asked
    sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} Y 12 45")  # fine
    client.force_login(coordinator)
    assert "2 messages need you" in client.get(reverse("surveys:poll-list")).text
    page = client.get(reverse("surveys:inbound"))
    assert page.status_code == 200
    assert "call me &lt;b&gt;now&lt;/b&gt;" in page.text  # escaped, never markup
    assert agency.name in page.text and "not matched to an open poll" in page.text
    assert len(page.context["page"].object_list) == 2
    first = page.context["page"].object_list[0]
    client.post(reverse("surveys:inbound-handled", args=[first.pk]))
    assert len(client.get(reverse("surveys:inbound")).context["page"].object_list) == 1
    assert AuditEvent.objects.filter(action="inbound.handled").count() == 1
    everything = client.get(reverse("surveys:inbound"), {"all": "1"})
    assert len(everything.context["page"].object_list) == 3
    # One click to the agency's answer form, for what the sender meant (after a call).
    matched = InboundMessage.objects.get(body="call me <b>now</b>")
    opened = client.post(reverse("surveys:inbound-open-form", args=[matched.pk]))
    assert opened.status_code == 302 and "/r/" in opened["Location"]
    form = client.get(opened["Location"].split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert form.status_code == 200 and agency.name in form.text
    assert AuditEvent.objects.filter(action="inbound.open_form").count() == 1


def test_a_code_on_two_open_polls_of_one_number_answers_neither(client, swat, sms_provider):
    """Codes are given out under a lock, so this should never happen; if it did, a text must
    not be applied to whichever poll came first: neither gets it, and the sender is told."""
    _poll, agency, invitation = texted(swat)
    other = PollFactory(target_agencies=[agency], title="Second poll")
    compose.poll_send(poll=other)
    Invitation.objects.filter(poll=other).update(reply_code=invitation.reply_code)
    text = said(sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} Y 4 20"))
    assert text.startswith(f"Code {invitation.reply_code} is on several open polls: use the form")
    assert text.count("/r/") == 2  # a link to each form
    assert not Reply.objects.exists()
    assert InboundMessage.objects.get().outcome == "unmatched"
    links = InvitationLink.objects.count()
    text = said(sms_provider.post_inbound(client, MOBILE, f"{invitation.reply_code} maybe"))
    assert text.startswith("Not understood") and "/r/" not in text
    assert InvitationLink.objects.count() == links  # no link made that nobody is sent


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_sends_at_once_never_give_one_number_the_same_code(postgres, swat, monkeypatch):
    """Two polls sent to the same number at the same moment on PostgreSQL, with the random
    codes forced to collide: the second sender waits for the first to commit, reads its code
    and picks another. Without the lock both would store 1000."""
    from django.db import transaction

    from surveys.channels import sms
    from tests.concurrency import hold_then_run

    agency = AgencyFactory()
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY, mobile=MOBILE, channels="sms")
    polls = [PollFactory(target_agencies=[agency], title=f"Poll {n}") for n in range(2)]
    draws = iter([0, 0, 1])  # 1000 for the first, 1000 (taken) then 1001 for the second
    monkeypatch.setattr(sms.secrets, "randbelow", lambda _n: next(draws))

    def first(waiting):
        with transaction.atomic():
            compose.poll_send(poll=polls[0])  # the lock is held until this commits
            assert waiting(), "the second send did not wait for the first"

    assert not hold_then_run(first, lambda: compose.poll_send(poll=polls[1]))
    codes = sorted(Invitation.objects.filter(mobile=MOBILE).values_list("reply_code", flat=True))
    assert codes == ["1000", "1001"]


@pytest.mark.services
def test_the_senders_lookup_keeps_one_plan_on_the_index_of_texted_invitations(postgres, swat):
    """PostgreSQL plans the lookup of a sender's invitations once per connection (a generic
    plan) and it uses the index of invitations with a number: the values the code fixes are
    written into the prepared statement, only the sender is a parameter. Otherwise it planned
    the four-table lookup again for every text (0.4 ms of its CPU each)."""
    from django.db import connection

    from surveys import selectors

    _, _, invitation = texted(swat)
    for _ in range(8):  # PostgreSQL settles on a generic plan after the fifth run
        assert [i.pk for i in selectors.open_texts(MOBILE)] == [invitation.pk]
    assert selectors.open_texts("+13125550199") == []
    name = selectors._OPEN_TEXTS.name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans FROM pg_prepared_statements WHERE name = %s", [name]
        )
        statement, generic = cursor.fetchone()
        cursor.execute(f"EXPLAIN EXECUTE {name}(%s)", [MOBILE])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "$1" in statement and "$2" not in statement and "'sms'" in statement
    assert generic >= 3
    assert "invitation_sms_code_idx" in plan
