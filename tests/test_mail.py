"""readiness.mail.smtp_bytes: the bytes the email channel sends for a bulk message must read, in
any mail reader, exactly as the message Django would have built (every header and both parts,
decoded), and anything of another shape must be left to Django (None)."""

import email
import email.policy
from email.utils import parsedate_to_datetime

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives

from readiness import mail

LONG_LINE = "word " * 300  # one line of 1,500 characters
BODIES = [
    "Plain ASCII.\nSecond line.\n",
    "Ünïcödé, emoji 🚓 and 中文, tabs\tand = signs = 3D\n",
    f"{LONG_LINE}\nafter the long line",
    "trailing spaces   \n.a line starting with a dot\nFrom the start of a line\n\n\n",
    "windows\r\nline\r\nends\r\n",
    "=?utf-8?q?not_an_encoded_word?= --===============0== boundary-like text",
]
SUBJECTS = [
    "Request for assistance: Bench availability check",
    "Réponse demandée : équipe d'intervention 🚓",
    "A long subject " * 20,
    "Ä long nön-ASCII sübject " * 12,
]


def django_parsed(message):
    return email.message_from_bytes(
        message.message(policy=email.policy.SMTP).as_bytes(), policy=email.policy.default
    )


def fast_parsed(message):
    data = mail.smtp_bytes(message)
    assert data is not None
    assert all(len(line) <= 998 for line in data.split(b"\r\n")), "SMTP's line limit"
    assert b"\n" not in data.replace(b"\r\n", b""), "only CRLF line ends"
    return email.message_from_bytes(data, policy=email.policy.default)


def assert_same(message):
    ours, django = fast_parsed(message), django_parsed(message)
    for name in ("From", "To", "Cc", "Reply-To", "X-Poll"):
        assert str(ours[name]) == str(django[name]), name
    # The subject as given; Django's (the standard library's) doubles a space before an emoji.
    assert str(ours["Subject"]) == message.subject
    assert str(ours["Subject"]).split() == str(django["Subject"]).split()
    assert ours.get_content_type() == django.get_content_type()
    for kind in ("plain", "html"):
        theirs = django.get_body((kind,))
        if theirs is None:
            assert ours.get_body((kind,)) is None
            continue
        assert ours.get_body((kind,)).get_content() == theirs.get_content(), kind
        assert ours.get_body((kind,)).get_content_charset() == "utf-8"
    assert parsedate_to_datetime(ours["Date"]) is not None
    return ours


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_an_invitation_like_message_reads_as_djangos(body, subject):
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email="Readiness Coördination <readiness@readiness.example>",
        to=["Chief Zoë O'Brien <chief@pd.example>"],
        headers={"Message-ID": "<inv-1-abc@readiness.invalid>", "X-Poll": "poll 7"},
        reply_to=["answers+r1.abc@readiness.example"],
    )
    message.attach_alternative(f"<p>{body}</p>", "text/html")
    ours = assert_same(message)
    assert ours["Message-ID"] == "<inv-1-abc@readiness.invalid>"


def test_address_headers_given_as_headers_win_as_djangos_do():
    message = EmailMultiAlternatives(
        subject="Hello",
        body="Hi",
        to=["a@pd.example", '"Doe, John" <john@pd.example>'],
        cc=["c@pd.example"],
        headers={"Reply-To": "answers+r2.x@readiness.example, other@readiness.example"},
    )
    message.attach_alternative("<p>Hi</p>", "text/html")
    ours = assert_same(message)
    assert ours["Reply-To"].addresses[1].addr_spec == "other@readiness.example"
    assert ours["To"].addresses[1].display_name == "Doe, John"
    assert ours["Message-ID"].endswith(">")  # one is made when none is given


def test_a_plain_message_reads_as_djangos():
    message = EmailMessage(subject="Reminder", body=BODIES[1], to=["chief@pd.example"])
    assert assert_same(message).get_content_type() == "text/plain"


def test_every_message_gets_its_own_boundary_and_message_id():
    message = EmailMultiAlternatives(subject="S", body="B", to=["a@pd.example"])
    message.attach_alternative("<p>B</p>", "text/html")
    first, second = fast_parsed(message), fast_parsed(message)
    assert first.get_boundary() != second.get_boundary()
    assert first["Message-ID"] != second["Message-ID"]


def refused(**changes):
    fields = {"subject": "S", "body": "B", "to": ["a@pd.example"]} | changes
    return EmailMultiAlternatives(**fields)


@pytest.mark.parametrize(
    "message",
    [
        refused(subject="Injected\nBcc: everyone@evil.example"),
        refused(to=["a@pd.example\nBcc: everyone@evil.example"]),
        refused(headers={"X-Note": "line\r\nbreak"}),
        refused(headers={"In-Reply-To": "Zoë <a@pd.example>"}),
        refused(headers={"reply-to": "spelt@otherwise.example"}),
        refused(headers={"Bcc": "hidden@pd.example"}),
        refused(headers={"Content-Type": "text/calendar"}),
        refused(to=["jörg@pd.example"]),  # a non-ASCII local part or domain: Django's rules
        refused(to=["a@bücher.example"]),
        refused(attachments=[("a.txt", "data", "text/plain")]),
    ],
    ids=[
        "newline-subject",
        "newline-address",
        "newline-header",
        "non-ascii-other-header",
        "lowercase-reply-to",
        "bcc-header",
        "content-type-header",
        "non-ascii-local-part",
        "idna-domain",
        "attachment",
    ],
)
def test_other_shapes_are_left_to_django(message):
    assert mail.smtp_bytes(message) is None


def test_an_alternative_other_than_html_is_left_to_django():
    message = refused()
    message.attach_alternative("BEGIN:VCALENDAR", "text/calendar")
    assert mail.smtp_bytes(message) is None
