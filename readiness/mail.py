"""Email in development: printed to the console like Django's console backend, but each message
is headed by a short line saying whom it is for and what it is, and the links it carries (a
reply link is the one thing a developer looks for in the output). And the bytes of a bulk
message, written without the standard library's slow modern email API (smtp_bytes)."""

import binascii
import datetime
import re
import secrets
from email.header import Header
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr

from django.conf import settings
from django.core.mail.backends.console import EmailBackend
from django.core.mail.utils import DNS_NAME
from django.utils.timezone import get_current_timezone

LINK = re.compile(r"https?://[^\s<>\"')]+")


class ConsoleEmailBackend(EmailBackend):
    def write_message(self, message):
        body = message.body if isinstance(message.body, str) else ""
        links = list(dict.fromkeys(LINK.findall(body)))
        rule = "=" * 79
        self.stream.write(f"{rule}\nEMAIL to {', '.join(message.to)}: {message.subject}\n")
        for link in links:
            self.stream.write(f"  link: {link}\n")
        self.stream.write(f"{rule}\n")
        super().write_message(message)


# --- A fast serialization of the messages this app sends in bulk ------------------------------

ASCII_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
ALTERNATIVES = {"text/html"}
HEADER_NAME = re.compile(r"[!-9;-~]+")


def smtp_bytes(message) -> bytes | None:
    """`message` (an EmailMessage, or an EmailMultiAlternatives with an HTML alternative) as
    the bytes Django's SMTP backend would send for it, or None for any message of another
    shape (attachments, other alternatives, a header with a line break...): the caller then
    lets Django build it.

    Why: Django builds every message with the standard library's modern email API, whose
    header parser and generator cost about 1.8 ms of CPU for an invitation, more than building
    its content. The shape of a bulk message is fixed, so it is written here directly: headers
    (RFC 2047 where not ASCII, folded), a text part and an HTML part, each UTF-8 in
    quoted-printable. A mail reader sees the same message; tests compare them part by part.
    """
    alternatives = getattr(message, "alternatives", ())
    if message.attachments or not isinstance(message.body, str):
        return None
    if any(
        alt.mimetype not in ALTERNATIVES or not isinstance(alt.content, str) for alt in alternatives
    ):
        return None
    if len(alternatives) > 1 or message.content_subtype != "plain":
        return None
    extra = {name: str(value) for name, value in message.extra_headers.items()}
    lowered = {name.lower() for name in extra}
    if lowered & {"bcc", "subject", "content-type", "mime-version", "content-transfer-encoding"}:
        return None  # Django refuses or rewrites these: let it
    if not all(HEADER_NAME.fullmatch(name) for name in extra):
        return None
    headers = []
    # As Django does: an address header given among the headers wins over the attribute.
    addressed = {"From": [message.from_email], "To": message.to, "Cc": message.cc,
                 "Reply-To": message.reply_to}  # fmt: skip
    for name, values in addressed.items():
        if name.lower() in lowered:
            if name not in extra:
                return None  # spelt another way: let Django decide
            values = [extra.pop(name)]
        if values:
            headers.append((name, _addresses(values)))
    headers.append(("Subject", _text_header("Subject", message.subject)))
    if "date" not in lowered:
        zone = get_current_timezone() if settings.EMAIL_USE_LOCALTIME else datetime.UTC
        headers.append(("Date", format_datetime(datetime.datetime.now(zone))))
    if "message-id" not in lowered:
        headers.append(("Message-ID", make_msgid(domain=DNS_NAME)))
    for name, value in extra.items():  # Message-ID and the like: ASCII, else Django's rules
        headers.append((name, _text_header(name, value) if value.isascii() else None))
    if any(value is None for _, value in headers):
        return None
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    if not alternatives:
        return (f"MIME-Version: 1.0\r\n{_PLAIN}{head}\r\n").encode() + _qp(message.body)
    boundary = f"==============={secrets.randbelow(10**19):019d}=="
    return (
        f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
        f"{head}\r\n--{boundary}\r\n{_PLAIN}\r\n"
    ).encode() + b"".join(
        [
            _qp(message.body),
            f"\r\n--{boundary}\r\n{_HTML}\r\n".encode(),
            _qp(alternatives[0].content),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )


_PLAIN = (
    'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
)
_HTML = (
    'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
)


def _qp(text: str) -> bytes:
    """UTF-8 text in quoted-printable with CRLF line ends (binascii's encoder, written in C)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"  # as the standard library's set_content ends every text
    encoded = binascii.b2a_qp(text.encode(), istext=True)
    return encoded.replace(b"\n", b"\r\n")


def _text_header(name: str, value: str) -> str | None:
    """An unstructured header's value: as it is when short ASCII, else RFC 2047 and folded.
    None for a value with a line break (Django refuses those, as it should)."""
    value = str(value)
    if "\n" in value or "\r" in value:
        return None
    if value.isascii() and len(name) + len(value) < 76:
        return value
    charset = "us-ascii" if value.isascii() else "utf-8"
    return Header(value, charset, header_name=name).encode(linesep="\r\n")


def _addresses(values) -> str | None:
    """Address headers: plain ASCII addresses as they are, display names RFC 2047-encoded when
    not ASCII; None for anything unusual (Django then checks and builds it)."""
    values = [str(value) for value in values]
    if any("\n" in value or "\r" in value for value in values):
        return None
    out = []
    for name, address in getaddresses(values):
        if not ASCII_ADDRESS.fullmatch(address):
            return None
        out.append(formataddr((name, address), charset="utf-8"))
    return ", ".join(out)


def envelope_address(value: str) -> str | None:
    """The addr-spec of a plain ASCII address, or None (then Django's parser decides)."""
    _, address = parseaddr(value)
    return address if ASCII_ADDRESS.fullmatch(address) else None
