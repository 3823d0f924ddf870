"""A real IMAP server for the tests: Debian's Dovecot on 127.0.0.1, with TLS (a self-signed
certificate made for the run) and one mailbox, started in a directory of its own and stopped at
the end. `.ci/run` installs the package; a machine without it skips these tests (and CI fails)."""

import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "answers@readiness.test", "imap-test-password"
CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
disable_plaintext_auth = yes
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
namespace inbox {{
  inbox = yes
  mailbox Processed {{
    auto = create
  }}
}}
"""


def available() -> bool:
    return bool(shutil.which("dovecot") or Path("/usr/sbin/dovecot").exists())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ImapServer:
    root: Path
    port: int
    process: subprocess.Popen

    @property
    def ca_file(self) -> str:
        return str(self.root / "cert.pem")

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=self.ca_file)
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        conn.login(USER, PASSWORD)
        return conn

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.client()
        try:
            typ, detail = conn.append(folder, None, None, raw)
            assert typ == "OK", detail
        finally:
            conn.logout()

    def count(self, folder: str) -> int:
        conn = self.client()
        try:
            _typ, data = conn.select(folder)
            return int(data[0])
        finally:
            conn.logout()

    def empty(self) -> None:
        for folder in ("INBOX", "Processed"):
            conn = self.client()
            try:
                conn.select(folder)
                conn.store("1:*", "+FLAGS", r"(\Deleted)")
                conn.expunge()
            except imaplib.IMAP4.error:
                pass
            finally:
                conn.logout()


def start(root: Path, *, deadline: float = 20.0) -> ImapServer:
    dovecot = shutil.which("dovecot") or "/usr/sbin/dovecot"
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "mail", 0o777)  # noqa: S103 (a test server whose mailbox owner is nobody)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = _free_port()
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(root=root, port=port))
    # In the foreground, as a child of the test run: stopped with it, whatever happens.
    process = subprocess.Popen(
        [dovecot, "-F", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = ImapServer(root, port, process)
    stop_at = time.monotonic() + deadline
    while True:
        try:
            server.client().logout()
            return server
        except (OSError, imaplib.IMAP4.error):
            if time.monotonic() > stop_at or process.poll() is not None:
                stop(server)
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                raise RuntimeError(f"Dovecot did not answer on {port}: {log[-2000:]}") from None
            time.sleep(0.1)


def stop(server: ImapServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
