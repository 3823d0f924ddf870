"""Secrets never reach a log: reply links (agencies' /r/ and team members' /m/), account
invitation links, password reset and email confirmation keys are masked in every log line
(Django's, runserver's and gunicorn's access log). Only their hashes are stored; a log must not
undo that."""

import logging
import re

# The secret part of each secret-bearing path, wherever it appears in a line (the request line,
# the path, a Referer header). "done" and "key/done" are pages, not secrets.
SLASH = r"(?:/|%2[fF])"
SECRET_PATHS = re.compile(
    rf"(?P<prefix>{SLASH}[rm]{SLASH}|{SLASH}accounts{SLASH}invitation{SLASH}[^/\s\"?%]+{SLASH}"
    rf"|{SLASH}accounts{SLASH}password{SLASH}reset{SLASH}key{SLASH}"
    rf"|{SLASH}accounts{SLASH}confirm-email{SLASH})(?P<secret>(?!done(?:/|%2[fF]))[^/\s\"?#%]+)"
)
MASK = "[hidden]"


def mask_secrets(text: str) -> str:
    return SECRET_PATHS.sub(lambda m: m["prefix"] + MASK, text)


class MaskSecrets(logging.Filter):
    """A handler filter: the record's message is rendered and masked once, here."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as it is
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            # Formatted here, masked, and kept: the handler's formatter then uses this text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


class OneLineRefusals(logging.Filter):
    """A refused request (403) is an answer, not an error: one line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
