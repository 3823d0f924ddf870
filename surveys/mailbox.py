"""Answers by email reply: each invitation email's Reply-To is a signed plus-address of the
reply mailbox (answers+r<id>.<signature>@...), so a reply finds its invitation without trusting
anything the sender typed. This module reads that mailbox over IMAP (TLS), takes the new text of
each message (quoted history and signatures cut; HTML-only mail turned into text; any charset),
recognises delivery-status notifications (bounces), and moves each message to the processed
folder once intake has recorded it. What a message means is intake's business.
"""

import contextlib
import email
import email.policy
import hashlib
import hmac
import html
import imaplib
import logging
import re
import secrets
import ssl
from dataclasses import dataclass

from django.conf import settings
from django.utils.html import strip_tags

logger = logging.getLogger(__name__)

TAG = re.compile(r"\+r(?P<pk>\d+)\.(?P<sig>[0-9a-f]{12})@", re.IGNORECASE)
INVITATION_MESSAGE_ID = re.compile(r"<inv-(?P<pk>\d+)-[0-9a-f]+@", re.IGNORECASE)
QUOTE_STARTS = (
    re.compile(r"^on .{3,200}wrote:?$", re.IGNORECASE),  # On Mon, ... Dana wrote:
    re.compile(r"^-{2,}\s*original message\s*-{2,}$", re.IGNORECASE),
    re.compile(r"^_{10,}$"),  # Outlook's rule
    re.compile(r"^(from|sent|de|von):\s", re.IGNORECASE),  # a forwarded header block
    re.compile(r"^--\s?$"),  # a signature
    re.compile(r"^sent from my ", re.IGNORECASE),
)
RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


def _signature(pk: int) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"reply-to:{pk}".encode(), hashlib.sha256).hexdigest()[:12]


def reply_address(invitation_pk: int) -> str:
    """The invitation's own Reply-To, or '' when no reply mailbox is set."""
    if not settings.REPLY_MAILBOX:
        return ""
    local, _, domain = settings.REPLY_MAILBOX.partition("@")
    return f"{local}+r{invitation_pk}.{_signature(invitation_pk)}@{domain}"


def message_id(invitation_pk: int) -> str:
    """A Message-ID naming the invitation, so that a bounce quoting it finds it."""
    domain = settings.REPLY_MAILBOX.partition("@")[2] or "readiness.invalid"
    return f"<inv-{invitation_pk}-{secrets.token_hex(6)}@{domain}>"


@dataclass
class Parsed:
    message_id: str
    sender: str
    subject: str
    invitation_pk: int | None
    text: str  # the new text only
    bounce_of: int | None = None  # an invitation whose email bounced
    bounce_reason: str = ""
    problem: str = ""  # why there is nothing to read


def parse(raw: bytes) -> Parsed:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    sender = email.utils.parseaddr(str(msg.get("From", "")))[1].lower()
    key = str(msg.get("Message-ID", "")).strip() or "sha256:" + hashlib.sha256(raw).hexdigest()
    parsed = Parsed(key[:200], sender, str(msg.get("Subject", ""))[:200], _tagged(msg), "")
    if msg.get_content_type() == "multipart/report":
        parsed.bounce_of, parsed.bounce_reason = _bounce(msg)
        return parsed
    text, found = "", False
    for kind in ("plain", "html"):  # a blank plain part beside the HTML one: read the HTML
        part = msg.get_body(preferencelist=(kind,))
        if part is None:
            continue
        found = True
        text = _content(part)
        if kind == "html":
            text = html.unescape(strip_tags(re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)))
        if new_text(text):
            break
    if not found:
        parsed.problem = "the email has no text (only an attachment?): write the answer in it."
        return parsed
    parsed.text = new_text(text)
    if not parsed.text:
        parsed.problem = "the email was empty above the quoted poll: write the answer first."
    return parsed


def _content(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, ValueError):  # an unknown or lying charset
        return (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")


def _tagged(msg) -> int | None:
    for header in RECIPIENT_HEADERS:
        for value in msg.get_all(header, []):
            for match in TAG.finditer(str(value)):
                pk = int(match["pk"])
                if hmac.compare_digest(match["sig"].lower(), _signature(pk)):
                    return pk
    return None


def new_text(text: str) -> str:
    """The first paragraph the sender wrote: quoted history, signatures and forwarded headers
    cut, at most 500 characters."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith(">") or any(p.match(stripped) for p in QUOTE_STARTS):
            break
        if not stripped and lines:
            break  # the first paragraph is the answer
        if stripped:
            lines.append(stripped)
    return " ".join(lines)[:500]


def _bounce(msg) -> tuple[int | None, str]:
    """(invitation id, reason) from a delivery-status notification."""
    reason, pk = "", None
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            body = part.as_string()
            found = re.search(r"(?im)^Diagnostic-Code:\s*(.+)$", body) or re.search(
                r"(?im)^Status:\s*(.+)$", body
            )
            reason = found[1].strip() if found else "delivery failed"
        elif kind in ("text/rfc822-headers", "message/rfc822"):
            found = INVITATION_MESSAGE_ID.search(part.as_string())
            if found:
                pk = int(found["pk"])
    return pk, reason[:300]


class Mailbox:
    """The reply mailbox over IMAP with TLS: fetch messages, move each to the processed folder."""

    def __enter__(self):
        context = ssl.create_default_context(cafile=settings.IMAP_CA_FILE or None)
        self.conn = imaplib.IMAP4_SSL(
            settings.IMAP_HOST, settings.IMAP_PORT, ssl_context=context, timeout=30
        )
        self.conn.login(settings.IMAP_USER, settings.IMAP_PASSWORD)
        self.conn.select(settings.IMAP_FOLDER)
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()

    def uids(self, limit: int) -> list[bytes]:
        _, data = self.conn.uid("SEARCH", None, "ALL")
        return data[0].split()[:limit] if data and data[0] else []

    def fetch(self, uid: bytes) -> bytes:
        _, data = self.conn.uid("FETCH", uid, "(BODY.PEEK[])")
        return next(part[1] for part in data if isinstance(part, tuple))

    def done(self, uid: bytes) -> None:
        typ, _ = self.conn.uid("MOVE", uid, settings.IMAP_PROCESSED_FOLDER)
        if typ != "OK":  # a server without MOVE
            self.conn.uid("COPY", uid, settings.IMAP_PROCESSED_FOLDER)
            self.conn.uid("STORE", uid, "+FLAGS", r"(\Deleted)")
            self.conn.expunge()
