"""A small stand-in for the SMS provider (the one part that cannot run here), on 127.0.0.1,
speaking the provider's HTTP API as the app's Twilio backend calls it: messages POSTed with
basic auth to /2010-04-01/Accounts/<sid>/Messages.json, and status callbacks signed with the
auth token posted back to the app (to a live server by HTTP, or through a test client)."""

import base64
import itertools
import json
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from surveys.channels.providers import signature

ACCOUNT = "AC00000000000000000000000000000001"
TOKEN = "fake-provider-auth-token"
FROM = "+13125550000"


@dataclass
class Sent:
    sid: str
    to: str
    body: str
    status_callback: str
    sender: str = ""


@dataclass
class FakeSms:
    port: int = 0
    messages: list[Sent] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    _failures: list[tuple[int, dict]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, n: int, status: int, code: int | None = None, message: str = "") -> None:
        """Answer the next n messages with this HTTP status and error body, then accept."""
        with self._lock:
            self._failures += [(status, {"code": code, "message": message, "status": status})] * n

    def to(self, number: str) -> list[Sent]:
        return [m for m in self.messages if m.to == number]

    def callback_params(self, sent: Sent, status: str, error: str = "") -> dict[str, str]:
        params = {"MessageSid": sent.sid, "MessageStatus": status, "AccountSid": ACCOUNT,
                  "To": sent.to, "From": sent.sender}  # fmt: skip
        if error:
            params["ErrorCode"] = error
        return params

    def post_status(self, client, sent: Sent, status: str, error: str = "", *, token=TOKEN):
        """Post a status callback through a Django test client, signed as the provider signs."""
        params = self.callback_params(sent, status, error)
        path = urllib.parse.urlsplit(sent.status_callback).path
        return client.post(
            path, params, HTTP_X_TWILIO_SIGNATURE=signature(sent.status_callback, params, token)
        )

    def post_inbound(self, client, sender: str, body: str, sid: str = "", *, token=TOKEN):
        """A text from `sender` to our number, posted to the app's inbound webhook as the
        provider posts it (signed), through a Django test client. Returns the response."""
        from django.conf import settings
        from django.urls import reverse

        path = reverse("surveys:sms-inbound")
        sid = sid or f"SM{next(self._ids) + 10**6:032x}"
        params = {"MessageSid": sid, "AccountSid": ACCOUNT, "From": sender, "To": FROM,
                  "Body": body, "NumMedia": "0"}  # fmt: skip
        url = settings.SITE_URL + path
        return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature(url, params, token))

    def _handle(self, handler: BaseHTTPRequestHandler) -> tuple[int, dict]:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if handler.path != f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json":
            return 404, {"code": 20404, "message": "The requested resource was not found"}
        if handler.headers.get("Authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate"}
        length = int(handler.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(handler.rfile.read(length).decode()))
        with self._lock:
            if self._failures:
                status, body = self._failures.pop(0)
                self.refused.append(form)
                return status, body
            sid = f"SM{next(self._ids):032x}"
            self.messages.append(
                Sent(sid, form.get("To", ""), form.get("Body", ""),
                     form.get("StatusCallback", ""), form.get("From", ""))
            )  # fmt: skip
        return 201, {"sid": sid, "status": "queued", "to": form.get("To")}


def start() -> tuple[FakeSms, ThreadingHTTPServer]:
    fake = FakeSms()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            status, body = fake._handle(self)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
