"""Answers by email reply, through a real IMAP server (Dovecot on 127.0.0.1, TLS): the signed
Reply-To finds the invitation, the new text is read (quotes, signatures, HTML, charsets), the
same reply service saves it, the sender is told, the message moves to Processed; bounces fail
the invitation and ask the alternates at once; the inbound webhook takes the same messages."""

import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from django.test import Client
from django.urls import reverse

from agencies.models import Contact
from readiness.models import AuditEvent
from surveys import compose, intake, mailbox
from surveys.models import InboundMessage, Invitation, Reply, ReplyVersion

from ..factories import AgencyFactory, ContactFactory, SpecialTeamFactory, TeamTypeFactory
from .factories import PollFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(reply_mailbox, smtp_sink, django_capture_on_commit_callbacks):
    agency = AgencyFactory()
    SpecialTeamFactory(agency=agency, team_type=TeamTypeFactory(code="swat-mail"), members=24,
                       name="SRT")  # fmt: skip
    ContactFactory(agency=agency, role=Contact.Role.PRIMARY, email="chief@pd.example",
                   name="Dana Ruiz", title="Chief")  # fmt: skip
    ContactFactory(agency=agency, role=Contact.Role.ALTERNATE, email="lt@pd.example")
    poll = PollFactory(target_agencies=[agency], title="Stadium evacuation")
    with django_capture_on_commit_callbacks(execute=True):
        compose.poll_send(poll=poll)
    [invitation] = Invitation.objects.filter(poll=poll)
    [out] = smtp_sink.messages
    return poll, agency, invitation, out.message


def reply_to(original, body: str, *, sender="chief@pd.example", html=None, charset=None):
    msg = EmailMessage()
    msg["From"] = f"Dana Ruiz <{sender}>"
    msg["To"] = original["Reply-To"]
    msg["Subject"] = "Re: " + original["Subject"]
    msg["Message-ID"] = email.utils.make_msgid(domain="pd.example")
    msg["In-Reply-To"] = original["Message-ID"]
    if html is not None and not body:
        msg.set_content(html, subtype="html")  # HTML only
    elif charset:
        msg.set_content(body, charset=charset)
    else:
        msg.set_content(body)
    return msg.as_bytes()


def fetch(capture):
    with capture(execute=True):
        return intake.mailbox_fetch()


def test_the_invitation_email_carries_a_signed_reply_address(sent):
    _, _, invitation, out = sent
    assert out["Reply-To"] == mailbox.reply_address(invitation.pk)
    assert out["Reply-To"].startswith(f"answers+r{invitation.pk}.")
    assert f"<inv-{invitation.pk}-" in out["Message-ID"]
    assert "Or reply to this email" in out.get_body(("plain",)).get_content()


def test_a_reply_through_imap_is_recorded_confirmed_and_moved(
    sent, reply_mailbox, smtp_sink, django_capture_on_commit_callbacks
):
    poll, agency, _invitation, out = sent
    quoted = "Y 12 45\n\nDana\n\nOn Mon, Nov 30, 2026, Readiness wrote:\n> Y 99 99\n"
    reply_mailbox.deliver(reply_to(out, quoted))
    assert fetch(django_capture_on_commit_callbacks) == {"handled": 1, "replayed": 0, "failed": 0}
    reply = Reply.objects.get(poll=poll, agency=agency)
    assert (reply.decision, reply.officers, reply.authorised_by_name) == (
        "available", 12, "Dana Ruiz",
    )  # fmt: skip
    assert ReplyVersion.objects.get(reply=reply).channel == "email"
    assert reply_mailbox.count("INBOX") == 0 and reply_mailbox.count("Processed") == 1
    told = smtp_sink.to("chief@pd.example")[-1].message
    assert told["Subject"] == "Your answer: recorded"
    assert told["In-Reply-To"]
    assert "Recorded for" in told.get_content() and "12 SRT" in told.get_content()
    # Its link opens the form on the answer recorded.
    link = re.search(r"https?://\S+?(/r/[^/\s]+/)", told.get_content())[1]
    page = Client().get(link)
    assert page.status_code == 200 and "Dana Ruiz" in page.text


def test_a_message_fetched_twice_is_one_answer(
    sent, reply_mailbox, django_capture_on_commit_callbacks
):
    poll, _, _, out = sent
    raw = reply_to(out, "Y 12 45")
    reply_mailbox.deliver(raw)
    reply_mailbox.deliver(raw)  # the same Message-ID again (a crash before the move, a resend)
    assert fetch(django_capture_on_commit_callbacks) == {"handled": 1, "replayed": 1, "failed": 0}
    assert Reply.objects.get(poll=poll).version == 1
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"body": "", "html": "<div>N<br>all officers committed</div><blockquote>Y</blockquote>"},
         ("unavailable", 0)),
        ({"body": "N Überstunden überall, kein Beamter frei", "charset": "iso-8859-1"},
         ("unavailable", 0)),
        ({"body": "Thanks, will check with the team and get back to you"}, None),
        ({"body": "no - all committed\n-- \nChief Dana Ruiz"}, ("unavailable", 0)),
        ({"body": "C 8 30 only under our own command"}, ("conditional", 8)),
    ],
)  # fmt: skip
def test_html_charsets_signatures_and_conditions(
    sent, reply_mailbox, django_capture_on_commit_callbacks, kwargs, expected
):
    poll, _, _, out = sent
    reply_mailbox.deliver(reply_to(out, **kwargs))
    fetch(django_capture_on_commit_callbacks)
    reply = Reply.objects.filter(poll=poll).first()
    if expected is None:  # not understood: kept for a person, nothing saved
        assert reply is None
        assert InboundMessage.objects.get().outcome == "not_understood"
    else:
        assert (reply.decision, reply.officers) == expected
        if kwargs.get("charset"):
            assert reply.decline_reason == "Überstunden überall, kein Beamter frei"


def test_an_email_with_only_an_attachment_or_from_a_stranger_saves_nothing(
    client, sent, reply_mailbox, smtp_sink, django_capture_on_commit_callbacks
):
    poll, _, _, out = sent
    msg = email.message_from_bytes(reply_to(out, "Y 12 45"), policy=email.policy.default)
    msg.clear_content()
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    reply_mailbox.deliver(msg.as_bytes())
    reply_mailbox.deliver(reply_to(out, "Y 12 45", sender="mallory@evil.example"))
    fetch(django_capture_on_commit_callbacks)
    assert not Reply.objects.filter(poll=poll).exists()
    outcomes = sorted(InboundMessage.objects.values_list("outcome", flat=True))
    assert outcomes == ["not_understood", "unmatched"]
    assert AuditEvent.objects.filter(action="email.refused").count() == 1
    told = smtp_sink.to("chief@pd.example")[-1].message.get_content()
    assert "only an attachment" in told
    # The form's link in it is saved with the message: it opens the agency's form.
    link = re.search(r"https?://\S+(/r/[\w-]+/)", told)[1]
    assert client.get(link).status_code == 200


def test_a_forged_reply_address_finds_nothing(
    sent, reply_mailbox, django_capture_on_commit_callbacks
):
    _poll, _, invitation, out = sent
    raw = reply_to(out, "Y 12 45").replace(
        mailbox.reply_address(invitation.pk).encode(),
        f"answers+r{invitation.pk}.000000000000@readiness.test".encode(),
    )
    reply_mailbox.deliver(raw)
    fetch(django_capture_on_commit_callbacks)
    assert not Reply.objects.exists()
    assert InboundMessage.objects.get().outcome == "unmatched"


def test_a_bounce_fails_the_invitation_and_asks_the_alternate_at_once(
    sent, reply_mailbox, smtp_sink, django_capture_on_commit_callbacks
):
    poll, _, invitation, out = sent
    dsn = (
        "From: MAILER-DAEMON@mx.pd.example\r\nTo: readiness@localhost\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.pd.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be '
        "delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
        "mx.pd.example\r\n\r\nFinal-Recipient: rfc822; chief@pd.example\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <chief@pd.example>: mailbox "
        "unknown\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {out['Message-ID']}\r\nSubject: {out['Subject']}\r\n--b--\r\n"
    ).encode()
    reply_mailbox.deliver(dsn)
    fetch(django_capture_on_commit_callbacks)
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.FAILED
    assert "550 5.1.1" in invitation.failure_reason
    alternate = Invitation.objects.get(poll=poll, is_escalation=True)
    assert alternate.email == "lt@pd.example" and alternate.state == Invitation.State.SENT
    assert smtp_sink.to("lt@pd.example")


def test_the_inbound_webhook_needs_its_secret_and_takes_the_same_message(
    client, settings, sent, django_capture_on_commit_callbacks
):
    poll, _, _, out = sent
    settings.INBOUND_EMAIL_SECRET = "hook-secret"
    raw = reply_to(out, "Y 12 45")
    url = reverse("surveys:email-inbound")
    refused = client.post(url, raw, content_type="message/rfc822")
    assert refused.status_code == 403 and not Reply.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        taken = client.post(url, raw, content_type="message/rfc822",
                            HTTP_X_INBOUND_SECRET="hook-secret")  # fmt: skip
        again = client.post(url, {"email": raw.decode()}, HTTP_X_INBOUND_SECRET="hook-secret")
    assert (taken.status_code, again.status_code) == (202, 200)
    assert Reply.objects.get(poll=poll).version == 1


def test_three_channels_one_poll_end_to_end(
    client, coordinator, sent, reply_mailbox, smtp_sink, sms_provider,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    """Out by email and by text; one agency answers by text, one by email reply (IMAP), one on
    the form; the dashboard counts all three with their channels; a replayed text changes
    nothing; a bounce escalates to the alternate."""
    import html
    import re

    from django.test import Client

    poll, by_email, _, out = sent
    swat = by_email.teams.get().team_type
    by_text, by_form, bouncing = AgencyFactory(), AgencyFactory(), AgencyFactory()
    for agency, mobile in ((by_text, "+13125550142"), (by_form, ""), (bouncing, "")):
        SpecialTeamFactory(agency=agency, team_type=swat, members=20, name="SRT")
        ContactFactory(agency=agency, role=Contact.Role.PRIMARY, mobile=mobile,
                       channels="sms" if mobile else "email")  # fmt: skip
    ContactFactory(agency=bouncing, role=Contact.Role.ALTERNATE, email="alt@bounce.example")
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        added = [by_text.pk, by_form.pk, bouncing.pk]
        client.post(
            reverse("surveys:poll-add", args=[poll.pk]), {"agencies": added, "confirm": "yes"}
        )
    text_invitation = Invitation.objects.get(poll=poll, agency=by_text)
    assert text_invitation.channel == "sms" and sms_provider.to("+13125550142")

    anonymous = Client()
    answer = f"{text_invitation.reply_code} Y 7 20"
    first = sms_provider.post_inbound(anonymous, "+13125550142", answer, sid="SMe2e")
    assert "Recorded" in html.unescape(first.content.decode())
    reply_mailbox.deliver(reply_to(out, "C 5 40 only under our own command"))
    form_mail = next(m for m in smtp_sink.messages
                     if m.rcpt_tos == [by_form.contacts.get().email])  # fmt: skip
    bounce_mail = next(m for m in smtp_sink.messages
                       if m.rcpt_tos == [bouncing.contacts.get(role="primary").email])  # fmt: skip
    link = re.search(r"(/r/[A-Za-z0-9_-]+/)", form_mail.message.get_body(("plain",)).get_content())[
        1
    ]
    assert anonymous.get(link).status_code == 200
    team = by_form.teams.get()
    with django_capture_on_commit_callbacks(execute=True):
        anonymous.post(link, {
            "version": "0", "decision": "available", "authorised_by_name": "Sam Lee",
            "authorised_by_rank": "Chief", f"team-{team.pk}-officers": "9",
            f"team-{team.pk}-depart_minutes": "15", f"team-{team.pk}-travel_minutes": "30",
        })  # fmt: skip
    dsn = (
        "From: MAILER-DAEMON@mx.example\r\nTo: readiness@localhost\r\nSubject: Undelivered\r\n"
        "Message-ID: <dsn-e2e@mx.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report;"
        ' report-type=delivery-status; boundary="b"\r\n\r\n--b\r\nContent-Type: '
        "message/delivery-status\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: "
        "smtp; 550 no such user\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {bounce_mail.message['Message-ID']}\r\n--b--\r\n"
    ).encode()
    reply_mailbox.deliver(dsn)
    with django_capture_on_commit_callbacks(execute=True):
        assert intake.mailbox_fetch()["handled"] == 2
    again = sms_provider.post_inbound(anonymous, "+13125550142", answer, sid="SMe2e")
    assert b"<Message>" not in again.content

    summary = client.get(reverse("poll-dashboard-summary", args=[poll.pk])).json()["headline"]
    assert summary["agencies_replied"] == 3
    assert summary["officers_available"] == 7 + 9
    assert summary["officers_conditional"] == 5
    channels = dict(Reply.objects.filter(poll=poll).values_list("agency_id", "versions__channel"))
    assert channels == {by_text.pk: "sms", by_email.pk: "email", by_form.pk: "link"}
    assert Invitation.objects.get(poll=poll, agency=bouncing, is_escalation=True).email == (
        "alt@bounce.example"
    )
