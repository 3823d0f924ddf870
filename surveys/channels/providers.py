"""SMS providers: how a text leaves the app and how the provider's callbacks are verified.

`provider()` picks one by SMS_PROVIDER: `console` (the embedded default: texts are printed, like
email) or `twilio` (Twilio's REST API, and any provider that speaks it: messages POSTed to
{SMS_API_URL}/2010-04-01/Accounts/{SMS_ACCOUNT_SID}/Messages.json with HTTP basic auth, a
status callback URL per message, callbacks signed with HMAC-SHA1 of the auth token).
"""

import base64
import hashlib
import hmac
import itertools
import json
import logging
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings

from .base import PERMANENT, SENT, TRANSIENT, Result, Unreachable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Text:
    """One text message to send."""

    to: str  # E.164
    body: str
    status_callback: str = ""


def signature(url: str, params: dict[str, str], token: str) -> str:
    """Twilio's request signature: base64 HMAC-SHA1, keyed by the auth token, of the full URL
    followed by every POST parameter's name and value, sorted by name."""
    payload = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(url: str, params: dict[str, str], given: str) -> bool:
    token = settings.SMS_AUTH_TOKEN
    if not token or not given:
        return False
    return hmac.compare_digest(signature(url, params, token), given)


class ConsoleProvider:
    """Prints each text (the embedded default), as the console email backend prints email."""

    _ids = itertools.count(1)

    def send(self, text: Text) -> Result:
        number = next(self._ids)
        stream = sys.stdout
        stream.write(f"--- Text message to {text.to} ---\n{text.body}\n{'-' * 40}\n")
        stream.flush()
        return Result(SENT, provider_id=f"console-{number}")


class TwilioProvider:
    """Twilio's Messages API (and compatible providers). A 4xx with an error code is permanent
    (the provider's reason is kept), except 429; 5xx, timeouts and refused connections are
    transient; a provider that cannot be reached at all is Unreachable."""

    def __init__(self):
        if not settings.SMS_API_URL.startswith(("https://", "http://")):
            raise ValueError("SMS_API_URL must be an http(s) URL")
        self.url = (
            f"{settings.SMS_API_URL.rstrip('/')}/2010-04-01/Accounts/"
            f"{settings.SMS_ACCOUNT_SID}/Messages.json"
        )
        credentials = f"{settings.SMS_ACCOUNT_SID}:{settings.SMS_AUTH_TOKEN}".encode()
        self.auth = "Basic " + base64.b64encode(credentials).decode()

    def send(self, text: Text) -> Result:
        form = {"To": text.to, "Body": text.body}
        if settings.SMS_FROM.startswith("MG"):
            form["MessagingServiceSid"] = settings.SMS_FROM
        else:
            form["From"] = settings.SMS_FROM
        if text.status_callback:
            form["StatusCallback"] = text.status_callback
        request = urllib.request.Request(  # noqa: S310 (an http(s) URL, checked above)
            self.url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": self.auth, "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.SMS_TIMEOUT) as response:  # noqa: S310
                body = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return self._refused(exc)
        except TimeoutError as exc:
            return Result(TRANSIENT, f"the SMS provider did not answer in time: {exc}")
        except (urllib.error.URLError, ConnectionError) as exc:
            raise Unreachable(f"the SMS provider cannot be reached: {exc}") from exc
        except ValueError as exc:
            return Result(TRANSIENT, f"the SMS provider answered something unreadable: {exc}")
        return Result(SENT, provider_id=str(body.get("sid", ""))[:64])

    @staticmethod
    def _refused(exc: urllib.error.HTTPError) -> Result:
        try:
            detail = json.loads(exc.read() or b"{}")
        except ValueError:
            detail = {}
        code, message = detail.get("code"), detail.get("message") or exc.reason
        reason = f"{exc.code} {message}" + (f" (error {code})" if code else "")
        if exc.code == 429 or exc.code >= 500:
            return Result(TRANSIENT, reason)
        if exc.code in (401, 403):
            # Our credentials, not the number: every text would fail; retry once fixed.
            return Result(TRANSIENT, f"the SMS provider refused our credentials: {reason}")
        return Result(PERMANENT, reason)


PROVIDERS = {"console": ConsoleProvider, "twilio": TwilioProvider}


def provider():
    return PROVIDERS[settings.SMS_PROVIDER]()
