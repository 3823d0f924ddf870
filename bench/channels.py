"""Benchmark of the answer channels: texts to the inbound SMS webhook through gunicorn under
concurrent load, against the same server's trivial view; and the IMAP intake of answer emails
from a real mailbox (Dovecot on 127.0.0.1, TLS).

Run from the repository root:

    python bench/channels.py                  # 2,000 agencies, 2,000 texts, 2,000 emails
    python bench/channels.py --small          # 200 of each, a shorter trivial phase
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/channels.py

Like bench/replies.py (whose server, clients and throwaway database it uses), it never touches
the developer's database. The data: --agencies agencies with a special team and a primary
contact reached by text and email, and two open polls: one sent to each contact by text (an
invitation with a reply code), one by email (an invitation with a signed Reply-To).

Phases, measured in one run:
  trivial  GET /healthz for --seconds in all: `trivial_rps`; in ten slices, each followed by a
           tenth of the texts (replies.run_with_trivial: both see the same machine)
  sms      each agency's answer ("<code> Y <officers> 30") POSTed to /sms/inbound/ as the
           provider posts it (form fields, X-Twilio-Signature), expecting the "Recorded" reply:
           `sms_in_rps`, `ratio` = sms_in_rps / trivial_rps, `p50_ms`, `p99_ms`
  replay   every text posted again with its message id: must change nothing (`duplicates`)
  imap     --emails answer emails appended to the mailbox, then the intake (what Celery beat
           runs every minute) reads, records and moves them: `imap_answers_per_s`; a second
           intake must find nothing new
Afterwards the stored versions are compared with what was acknowledged: `lost` (acknowledged,
not stored) and `duplicates` (stored beyond one per answer). The last line is one JSON object;
the bench exits non-zero on errors, lost or duplicates. Without Dovecot the IMAP phase is
skipped (and says so).
"""

import argparse
import collections
import contextlib
import io
import json
import logging
import os
import queue
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fanout import create_agencies, create_poll  # noqa: E402 (helpers shared by the benches)
from import_registry import BenchDatabase  # noqa: E402
from replies import (  # noqa: E402
    Server,
    error_kind,
    machine_busy,
    run_phase,
    run_with_trivial,
)

SITE = "http://bench.invalid"  # the server signs callbacks' URLs with this, so does the bench
TOKEN, ACCOUNT, FROM = "bench-sms-token", "ACbench0000000000000000000000000001", "+13125550000"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=2000)
    parser.add_argument("--emails", type=int, default=None, help="default: --agencies")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="trivial phase length")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--conn-max-age", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--small", action="store_true", help="200 of each; 2 s trivial phase")
    args = parser.parse_args()
    if args.small:
        args.agencies, args.seconds = 200, 2.0
    args.emails = args.agencies if args.emails is None else min(args.emails, args.agencies)
    return args


class Text:
    def __init__(self, agency_id: int, mobile: str, code: str, officers: int, n: int):
        self.agency_id, self.mobile, self.code, self.officers = agency_id, mobile, code, officers
        self.sid = f"SMbench{n:026d}"
        self.acked = False

    def body(self) -> bytes:
        from surveys.channels.providers import signature

        params = {"MessageSid": self.sid, "AccountSid": ACCOUNT, "From": self.mobile, "To": FROM,
                  "Body": f"{self.code} Y {self.officers} 30", "NumMedia": "0"}  # fmt: skip
        self.signature = signature(SITE + "/sms/inbound/", params, TOKEN)
        return urlencode(params).encode()


def create_data(n: int, seed: int):
    """n agencies, each with a SWAT team and a primary contact reached by text and email; a
    text poll and an email poll, each with a delivered invitation per agency."""
    from django.db import transaction
    from django.utils import timezone

    from agencies.models import Contact, SpecialTeam, TeamType
    from surveys.channels.sms import assign_reply_codes
    from surveys.models import Invitation, Poll

    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic():
        region, agencies = create_agencies(n, rng)
        swat = TeamType.objects.get(code="swat")
        SpecialTeam.objects.bulk_create(
            [SpecialTeam(code=f"{code}-srt", name="SRT", agency_id=pk, team_type=swat, level=2,
                         members=rng.randint(8, 30)) for pk, code in agencies],
            batch_size=1000,
        )  # fmt: skip
        for k, (pk, _) in enumerate(agencies):
            Contact.objects.filter(agency_id=pk).update(mobile=f"+1312{2000000 + k:07d}",
                                                        channels="both")  # fmt: skip
        contacts = {c.agency_id: c for c in Contact.objects.all()}
        polls = {}
        first = create_poll(region, state=Poll.State.OPEN, sent_at=now)
        for channel in ("sms", "email"):
            poll = first
            if channel == "email":  # a second poll like the first
                poll = Poll.objects.get(pk=first.pk)
                poll.pk = None
                poll.save()
                poll.target_regions.set([region])
            poll.title = f"By {channel}"
            poll.save(update_fields=["title"])
            poll.target_team_types.set([swat])
            invitations = [
                Invitation(poll=poll, agency_id=pk, contact=contacts[pk], channel=channel,
                           email=contacts[pk].email if channel == "email" else "",
                           mobile=contacts[pk].mobile if channel == "sms" else "",
                           distance_km=30.0, travel_minutes=25, state=Invitation.State.SENT,
                           sent_at=now, attempts=1)
                for pk, _ in agencies
            ]  # fmt: skip
            if channel == "sms":
                assign_reply_codes(invitations)
            Invitation.objects.bulk_create(invitations, batch_size=1000)
            polls[channel] = poll
    members = dict(SpecialTeam.objects.values_list("agency_id", "members"))
    texts = [
        Text(inv.agency_id, inv.mobile, inv.reply_code, rng.randint(1, members[inv.agency_id]), k)
        for k, inv in enumerate(Invitation.objects.filter(poll=polls["sms"]).order_by("pk"))
    ]
    return polls, texts


def sms_work(texts: list[Text], *, replay: bool = False):
    """Post each text to the inbound webhook as the provider does. A first delivery must be
    answered "Recorded"; a replay (the same message id again) must get no answer at all."""
    todo = queue.SimpleQueue()
    for text in texts:
        todo.put(text)

    def work(connection, record) -> None:
        while True:
            try:
                text = todo.get_nowait()
            except queue.Empty:
                return
            body = text.body()
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": text.signature}  # fmt: skip
            try:
                response, data, took = connection.request("POST", "/sms/inbound/", body, headers)
            except OSError as exc:
                record(None, error_kind(exc))
                continue
            if response.status == 200 and replay and b"<Message>" not in data:
                record(took)
            elif response.status == 200 and not replay and b"<Message>Recorded for" in data:
                text.acked = True
                record(took)
            else:
                record(None, f"{'replay' if replay else 'sms'} {response.status} {data[:60]!r}")

    return work


def imap_phase(poll, n: int, seed: int) -> dict:
    """Append n answer emails to a real mailbox, then time the intake that reads them."""
    from tests import imap_server as dovecot

    if not dovecot.available():
        print("imap: skipped (Dovecot is not installed: apt-get install dovecot-imapd)")
        return {"imap_answers_per_s": None, "imap_seconds": None, "imap_lost": 0, "imap_dupes": 0}
    from django.conf import settings

    from surveys import intake, mailbox
    from surveys.models import Invitation, ReplyVersion

    root = Path(tempfile.mkdtemp(prefix="readiness-bench-imap-"))
    root.chmod(0o755)
    server = dovecot.start(root)
    try:
        settings.REPLY_MAILBOX = dovecot.USER
        settings.IMAP_HOST, settings.IMAP_PORT = "127.0.0.1", server.port
        settings.IMAP_USER, settings.IMAP_PASSWORD = dovecot.USER, dovecot.PASSWORD
        settings.IMAP_CA_FILE = server.ca_file
        rng = random.Random(seed)
        conn = server.client()
        invitations = list(
            Invitation.objects.filter(poll=poll).select_related("contact").order_by("pk")[:n]
        )
        for k, inv in enumerate(invitations):
            raw = (
                f"From: {inv.contact.name} <{inv.email}>\r\nTo: {mailbox.reply_address(inv.pk)}"
                f"\r\nSubject: Re: By email\r\nMessage-ID: <bench-{k}@pd.example>\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\nY {rng.randint(1, 8)} 30\r\n\r\n"
                "On Mon, Readiness wrote:\r\n> the poll\r\n"
            ).encode()
            conn.append("INBOX", None, None, raw)
        conn.logout()
        with contextlib.redirect_stdout(io.StringIO()):  # the console mailer's answers
            start = time.perf_counter()
            first = intake.mailbox_fetch(limit=n + 10)
            seconds = time.perf_counter() - start
            second = intake.mailbox_fetch(limit=n + 10)
        stored = collections.Counter(
            ReplyVersion.objects.filter(poll=poll).values_list("reply__agency_id", flat=True)
        )
        print(
            f"imap: {first['handled']:,} emails read, recorded and moved in {seconds:.2f}s "
            f"({first['handled'] / seconds:,.1f}/s); a second read found {second['handled']}"
        )
        return {
            "imap_answers_per_s": round(first["handled"] / seconds, 1) if seconds else None,
            "imap_seconds": round(seconds, 2),
            "imap_lost": len(invitations) - len(stored),
            "imap_dupes": sum(v - 1 for v in stored.values()) + second["handled"],
            "imap_failed": first["failed"],
        }
    finally:
        dovecot.stop(server)
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, database: BenchDatabase) -> dict:
    from django.core.management import call_command
    from django.db import connections

    from surveys.models import Reply, ReplyVersion

    busy = machine_busy()
    if busy > 0.25:
        print(f"note: {busy:.0%} of the CPUs were busy before the run: the figures may be low")
    call_command("migrate", verbosity=0)
    polls, texts = create_data(args.agencies, args.seed)
    database.settle()
    print(f"database: {database.kind}; {args.agencies:,} agencies, a text and an email poll")
    connections.close_all()
    log_dir = tempfile.mkdtemp(prefix="readiness_bench_server_")
    server = Server(args, log_dir, None)
    try:
        server.start()
        server.wait_ready()
        trivial, sms = run_with_trivial("sms", args.clients, server.port, server, texts,
                                        sms_work, args.seconds)  # fmt: skip
        replay = run_phase(
            "replay", args.clients, server.port, server, sms_work(texts, replay=True)
        )
        for phase in (trivial, sms, replay):
            print(phase.report())
        problems = server.problems()
    finally:
        server.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    stored = collections.Counter(
        ReplyVersion.objects.filter(poll=polls["sms"]).values_list("reply__agency_id", flat=True)
    )
    acked = {t.agency_id for t in texts if t.acked}
    lost = len(acked - set(stored))
    duplicates = sum(v - 1 for v in stored.values())
    officers = dict(Reply.objects.filter(poll=polls["sms"]).values_list("agency_id", "officers"))
    mismatched = sum(1 for t in texts if t.acked and officers.get(t.agency_id) != t.officers)
    imap = imap_phase(polls["email"], args.emails, args.seed)
    errors = sum(sum(p.errors.values()) for p in (trivial, sms, replay))
    return {
        "sms_in_rps": round(sms.rps, 1),
        "trivial_rps": round(trivial.rps, 1),
        "ratio": round(sms.rps / trivial.rps, 3) if trivial.rps else None,
        "p50_ms": round(sms.percentile_ms(0.5), 2),
        "p99_ms": round(sms.percentile_ms(0.99), 2),
        "sms_cpu_ms": round(sms.cpu_ms, 2),
        "trivial_cpu_ms": round(trivial.cpu_ms, 2),
        "replay_rps": round(replay.rps, 1),
        "imap_answers_per_s": imap["imap_answers_per_s"],
        "imap_seconds": imap["imap_seconds"],
        "lost": lost + imap["imap_lost"],
        "duplicates": duplicates + imap["imap_dupes"],
        "mismatched": mismatched,
        "errors": errors + imap.get("imap_failed", 0),
        "texts": len(texts),
        "emails": args.emails,
        "database": database.kind,
        "server_log_errors": problems.total(),
        "busy_before": round(busy, 2),
    }


def main() -> None:
    args = parse_args()
    database = BenchDatabase()
    try:
        database.create()
        os.environ["DJANGO_SETTINGS_MODULE"] = "readiness.settings"
        for name in ("REDIS_URL", "CELERY_TASK_ALWAYS_EAGER", "EMAIL_HOST", "DJANGO_ENV"):
            os.environ.pop(name, None)
        os.environ.update(
            DEBUG="false", SITE_URL=SITE, SMS_PROVIDER="twilio", SMS_AUTH_TOKEN=TOKEN,
            SMS_ACCOUNT_SID=ACCOUNT, SMS_FROM=FROM,
        )  # fmt: skip
        import django

        django.setup()
        # Celery's eager runs of the answers' emails would log a line each.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        figures = run(args, database)
    finally:
        database.drop()
    print(json.dumps(figures))
    if figures["errors"] or figures["lost"] or figures["duplicates"] or figures["mismatched"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
