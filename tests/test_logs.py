"""Secrets never reach a log: reply links and account links are masked in Django's log lines
and in gunicorn's access log (with its Referer), while the rest of each line stays readable."""

import io
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.urls import reverse

from readiness.log_filters import MaskSecrets
from surveys.models import Poll
from tests.surveys.conftest import free_port
from tests.surveys.factories import open_invitation
from tests.test_services import ROOT, worker_env


@pytest.fixture
def console():
    """What the app's console handler writes, as text."""
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, MaskSecrets) for f in h.filters)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.mark.django_db
def test_reply_links_are_masked_in_django_log_lines(client, console):
    invitation, token = open_invitation()
    client.get(reverse("surveys:reply", args=["guessed-" + "x" * 30]))  # 404: logged
    Poll.objects.filter(pk=invitation.poll_id).update(state=Poll.State.CLOSED)
    client.get(reverse("surveys:reply", args=[token]))  # 410: logged
    client.get(reverse("invitation-accept", args=["MQ", "set-password-secret"]))  # 400: logged
    text = console.getvalue()
    assert "Not Found: /r/[hidden]/" in text
    assert "Gone: /r/[hidden]/" in text
    assert "/accounts/invitation/MQ/[hidden]/" in text
    assert token not in text and "x" * 30 not in text and "set-password-secret" not in text
    assert text.count("Not Found: /r/[hidden]/") == 1  # logged once, not twice


@pytest.mark.django_db(transaction=True)
def test_reply_links_are_masked_in_gunicorns_access_log(postgres, tmp_path):
    _, token = open_invitation()
    port, log = free_port(), tmp_path / "access.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "readiness.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", str(log)],
        cwd=ROOT, env={**worker_env(), "DEBUG": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # poll with a deadline until gunicorn answers
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        page = f"{url}/r/{token}/"
        request = urllib.request.Request(f"{page}done/", headers={"Referer": page})
        urllib.request.urlopen(request, timeout=10)  # not answered yet: sent to the form
        assert urllib.request.urlopen(page, timeout=10).status == 200
        while log.read_text().count("\n") < 3:  # gunicorn writes each line after the response
            assert time.monotonic() < deadline + 30, log.read_text()
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert token not in text, text
    assert "GET /r/[hidden]/ HTTP/1.1" in text and "GET /r/[hidden]/done/ HTTP/1.1" in text
    assert f"{url}/r/[hidden]/" in text  # the Referer too


def test_tracebacks_and_encoded_paths_are_masked_too(console):
    log = logging.getLogger("readiness.test")
    try:
        raise ValueError("could not open /r/secret-token-in-a-traceback/")
    except ValueError:
        log.exception("while handling GET %s", "%2Fr%2Fencoded-secret-token%2F")
    text = console.getvalue()
    assert "secret-token-in-a-traceback" not in text and "encoded-secret-token" not in text
    assert "ValueError: could not open /r/[hidden]/" in text and "%2Fr%2F[hidden]%2F" in text


@pytest.mark.django_db
def test_a_refused_request_is_logged_once_as_one_line(client, console):
    from readiness.models import User
    from tests.factories import UserFactory

    client.force_login(UserFactory(role=User.Role.OFFICIAL))
    assert client.get(reverse("people")).status_code == 403
    text = console.getvalue()
    assert text.count("Forbidden (Permission denied): /people/") == 1
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1


def test_pages_carry_the_apps_icon(client, db):
    page = client.get(reverse("account_login")).text
    assert 'rel="icon" href="/static/img/favicon.svg"' in page


def test_member_links_are_masked_like_reply_links():
    from readiness.log_filters import mask_secrets

    line = '"GET /m/Zx8-secret_token/ HTTP/1.1" 200 referer http://x/m/Zx8-secret_token/'
    assert mask_secrets(line) == '"GET /m/[hidden]/ HTTP/1.1" 200 referer http://x/m/[hidden]/'
