"""Replies: an agency's answer by any channel (the link's form, a signed-in commander's page, the
API), with its versions, conflicts, audit and confirmation, and the sender's digest of new
answers. Every channel's answer goes through reply_submit. It must not render pages or know
how the answer arrived beyond the invitation or user that gave it."""

import copy
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Subquery
from django.utils import timezone

from readiness import audit, bulk
from readiness.db import loaded

from . import jobs, selectors
from .models import Invitation, Poll, Reply, ReplyLine, ReplyVersion

logger = logging.getLogger(__name__)


class ReplyRefused(Exception):
    """The link or poll no longer takes answers; `reason` says why (closed, cancelled, revoked)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotInOneStatement(Exception):
    """reply_submit(alone=True) could not write the answer in one statement (not a first
    answer, or one refused or beaten to it): nothing was written."""


class ReplyConflict(Exception):
    """Someone saved a newer version since the form was opened; `current` is that reply."""

    def __init__(self, current):
        super().__init__("conflict")
        self.current = current


def reply_refusal(poll: Poll, invitation: Invitation | None = None, *, now=None) -> str:
    """Why answers are not taken now ("" when they are): revoked link, cancelled or closed."""
    now = now or timezone.now()
    if invitation is not None and invitation.revoked_at:
        return "revoked"
    if poll.state == Poll.State.CANCELLED:
        return "cancelled"
    if poll.state == Poll.State.CLOSED or (poll.state == Poll.State.OPEN and poll.deadline <= now):
        return "closed"  # past the deadline counts even before the beat job closes the poll
    if poll.state != Poll.State.OPEN:
        return "closed"
    return ""


LINE_FIELDS = ("officers", "vehicles", "depart_minutes", "travel_minutes", "arrival_minutes",
               "deploy_hours", "officers_qualified")  # fmt: skip


def reply_snapshot(reply: Reply, lines) -> dict:
    """The whole answer as plain data, as stored with each version."""
    return {
        "decision": reply.decision,
        "authorised_by_name": reply.authorised_by_name,
        "authorised_by_rank": reply.authorised_by_rank,
        "conditions": list(reply.conditions),
        "conditions_text": reply.conditions_text,
        "decline_reason": reply.decline_reason,
        "note": reply.note,
        "officers": reply.officers,
        "lines": [
            {
                "team_id": line.team_id,
                "team": line.team.name,
                **{f: getattr(line, f) for f in LINE_FIELDS},
            }
            for line in lines
        ],
    }


def _readable(snapshot: dict) -> dict:
    """A snapshot with labels people read, one key per team figure: what history diffs."""
    if not snapshot:
        return {}
    labels = dict(Reply.Condition.choices)
    readable = {
        "Decision": dict(Reply.Decision.choices).get(snapshot["decision"], snapshot["decision"]),
        "Authorised by": ", ".join(
            p for p in (snapshot["authorised_by_name"], snapshot["authorised_by_rank"]) if p
        ),
        "Conditions": "; ".join(labels.get(c, c) for c in snapshot["conditions"]),
        "Conditions in own words": snapshot["conditions_text"],
        "Decline reason": snapshot["decline_reason"],
        "Note": snapshot["note"],
    }
    names = {
        "officers": "officers", "vehicles": "vehicles", "depart_minutes": "leave after (min)",
        "travel_minutes": "travel (min)", "arrival_minutes": "arrive after (min)",
        "deploy_hours": "can stay (h)", "officers_qualified": "meeting requirements",
    }  # fmt: skip
    for line in snapshot["lines"]:
        for field, name in names.items():
            if line.get(field) is not None:
                readable[f"{line['team']}: {name}"] = line[field]
    return {k: v for k, v in readable.items() if v not in ("", None)}


def _lock_poll_for_reply(poll_id: int, invitation_id: int | None) -> tuple[Poll, object]:
    """The poll's state and deadline, read so that closing or cancelling it waits for this
    reply to commit, and `revoked_at` of the invitation used (None without one).

    On PostgreSQL a FOR SHARE lock: replies do not block each other, but the FOR UPDATE of
    close/cancel does. SQLite serialises writers anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # two columns: no model to build
            cursor.execute(
                "SELECT p.state, p.deadline, i.revoked_at FROM surveys_poll p "
                "LEFT JOIN surveys_invitation i ON i.id = %s WHERE p.id = %s FOR SHARE OF p",
                [invitation_id, poll_id],
            )
            state, deadline, revoked_at = cursor.fetchone()
        return loaded(Poll, {"id": poll_id, "state": state, "deadline": deadline}), revoked_at
    revoked = Invitation.objects.filter(pk=invitation_id).values("revoked_at")
    locked = Poll.objects.annotate(link_revoked_at=Subquery(revoked)).get(pk=poll_id)
    return locked, locked.link_revoked_at


READ = object()  # reply_submit's `stored` when the caller has not read the stored answer

# What an answer's save writes on its reply (the rest is set once, when it is created).
SAVED_FIELDS = ("decision", "authorised_by_name", "authorised_by_rank", "conditions",
                "conditions_text", "decline_reason", "note", "officers",
                "earliest_arrival_minutes", "travel_flagged", "version", "updated_at",
                "updated_by", "updated_via")  # fmt: skip


def reply_submit(
    *, poll: Poll, agency, answer: dict, lines: list[dict], base_version: int,
    invitation: Invitation | None = None, user=None, request=None, confirm: bool = True,
    now=None, channel: str = "", member_tally: dict | None = None, stored=READ, also=(),
    alone: bool = False,
) -> ReplyVersion | None:  # fmt: skip
    """Save an agency's answer and its team lines in one transaction, as a new version.

    `answer` and `lines` come validated from ReplySubmission (or the API's equivalent).
    `base_version` is the version the form was built from (0 for none): if the stored reply has
    moved on, ReplyConflict is raised and nothing is saved. An unchanged answer saves nothing and
    returns None. A confirmation email to the author is written due with the version and sent by
    a worker after commit (unless `confirm` is false: demo data, or a text answer confirmed by
    text). `channel` is how it came
    (ReplyVersion.Channel; by default the signed-in form or the emailed link). `stored` is the
    answer as the caller read it (selectors.stored_reply), read here when not given: it is saved
    over only if its version is still the stored one, so nothing is read twice or locked while
    the answer is checked. `now` is injectable for demo data and tests. A first answer on
    PostgreSQL (`stored` None) is checked and written in one statement, with `also`: groups of
    unsaved rows that the caller keeps with the answer (the text that gave it), each with the
    attname that takes the new version's id (or None); they are saved, and get their pk, only
    there: otherwise the caller saves them. With `alone`, only that statement: anything else
    raises NotInOneStatement, having written nothing (the caller, outside a transaction, then
    starts again in one).
    """
    now = now or timezone.now()
    if stored is None and base_version == 0 and connection.vendor == "postgresql":
        # A first answer, the common case: checked and written in one statement.
        return _first_in_one_statement(
            poll=poll, agency=agency, answer=answer, lines=lines, invitation=invitation,
            user=user, request=request, confirm=confirm, now=now, channel=channel,
            member_tally=member_tally, also=also, alone=alone,
        )  # fmt: skip
    if alone:
        raise NotInOneStatement
    with transaction.atomic():
        locked, revoked_at = _lock_poll_for_reply(poll.pk, invitation.pk if invitation else None)
        if invitation is not None:
            invitation.revoked_at = revoked_at
        reason = reply_refusal(locked, invitation, now=now)
        if reason:
            raise ReplyRefused(reason)
        if stored is READ:
            stored = selectors.stored_reply(poll=poll, agency=agency)
        before = reply_snapshot(stored, stored.lines.all()) if stored else {}
        created = stored is None
        reply, new_lines, after = _drafted(poll, agency, answer, lines, now=now, stored=stored)
        changes = audit.diff(_readable(before), _readable(after))
        if (stored.version if stored else 0) != base_version or (stored and not changes):
            # Nothing to save: the same answer again (a double click, a retried request) or a
            # conflict, either told against the answer stored now, which may be newer.
            if stored and not Reply.objects.filter(pk=stored.pk, version=stored.version).exists():
                return _lost_race(poll, agency, after)
            if stored and not changes:
                return None
            raise ReplyConflict(stored)
        _stamp(reply, now=now, user=user, invitation=invitation)
        if created:
            if not bulk.insert_unless_taken(reply, unique=("poll", "agency")):
                # Someone else's first answer for this agency committed a moment ago.
                return _lost_race(poll, agency, after)
        else:
            saved = Reply.objects.filter(pk=stored.pk, version=stored.version).update(
                **{field: getattr(reply, field) for field in SAVED_FIELDS}
            )
            if not saved:  # a newer version was saved since `stored` was read
                return _lost_race(poll, agency, after)
            ReplyLine.objects.filter(reply=reply).delete()
        for line in new_lines:
            line.reply = reply
        version, event = _version_and_event(
            reply, after, changes, created=created, invitation=invitation, channel=channel,
            member_tally=member_tally, request=request, confirm=confirm,
        )  # fmt: skip
        # The lines, the version, the audit event and the invitations' first answer, written in
        # one statement on PostgreSQL.
        first_answer = _first_answer(poll, agency, now)
        bulk.insert_together([new_lines, [version], [event]], update=first_answer)
        _saved(version)
    return version


def _drafted(poll, agency, answer, lines, *, now, stored=None) -> tuple[Reply, list, dict]:
    """The answer as it would be saved, unsaved: its reply (a copy of `stored`, which stays as
    it is for a conflict to show, or a new one), its lines and its snapshot."""
    reply = copy.copy(stored) if stored else bulk.new(Reply, poll=poll, agency=agency,
                                                        created_at=now, version=0)  # fmt: skip
    new_lines = [_line(poll, line) for line in lines]
    _apply(reply, answer, new_lines)
    return reply, new_lines, reply_snapshot(reply, new_lines)


def _stamp(reply: Reply, *, now, user, invitation) -> None:
    reply.version += 1
    reply.updated_at = now
    reply.updated_by = user if user is not None and user.is_authenticated else None
    reply.updated_via = invitation


def _version_and_event(reply, after, changes, *, created, invitation, channel, member_tally,
                       request, confirm) -> tuple[ReplyVersion, object]:  # fmt: skip
    """The new version's row and its audit event, unsaved; with `confirm`, its confirmation
    email due (sent by a worker once it commits)."""
    if reply.updated_by:
        author, email = reply.updated_by.get_full_name(), reply.updated_by.email
    else:
        author, email = invitation.contact.name, invitation.email or invitation.contact.email
    version = bulk.new(
        ReplyVersion,
        reply=reply,
        poll=reply.poll,
        number=reply.version,
        created_at=reply.updated_at,
        user=reply.updated_by,
        invitation=invitation,
        author=f"{author} <{email}>"[:300],
        author_email=email,
        channel=channel or (ReplyVersion.Channel.FORM if reply.updated_by else "link"),
        member_tally=member_tally or {},
        data=after,
        changes=changes,
        confirmation=ReplyVersion.Confirmation.DUE if confirm and email else "",
    )
    event = audit.event(
        "reply.create" if created else "reply.update",
        request=request, obj=reply, actor_email=email,
        changes={"version": reply.version, **changes},
    )  # fmt: skip
    return version, event


def _saved(version: ReplyVersion) -> None:
    """What follows a saved version once it commits: the dashboards' next refresh shows it, and
    a worker sends its confirmation, if one is due (one queued run for any number of answers;
    a broker down as it commits delays the email to beat's next run, and fails nothing)."""
    if version.confirmation == ReplyVersion.Confirmation.DUE:
        # The count forgotten and the run queued in one round trip to the cache.
        jobs.soon("surveys.tasks.send_reply_confirmations",
                  forget=(selectors.activity_key(version.poll_id),))  # fmt: skip
    else:
        selectors.poll_activity_changed(version.poll_id)


def _first_in_one_statement(*, poll, agency, answer, lines, invitation, user, request,
                            confirm, now, channel, member_tally, also, alone):  # fmt: skip
    """A first answer on PostgreSQL: the poll's state checked (and held, FOR SHARE, so that
    closing or cancelling it waits), the reply inserted unless another answer for the agency
    was, its lines, version and audit event, and the invitations' first answer, in one
    statement, which commits by itself outside a transaction: four round trips fewer than the
    general path's (BEGIN, the lock, the reply, COMMIT). When it writes nothing, the general
    path finds out why (closed, cancelled, withdrawn) or the answer that was saved first."""
    reply, new_lines, after = _drafted(poll, agency, answer, lines, now=now)
    changes = audit.diff({}, _readable(after))
    _stamp(reply, now=now, user=user, invitation=invitation)
    version, event = _version_and_event(
        reply, after, changes, created=True, invitation=invitation, channel=channel,
        member_tally=member_tally, request=request, confirm=confirm,
    )  # fmt: skip
    table, invitations = Poll._meta.db_table, Invitation._meta.db_table
    guard = (
        f"SELECT FROM {table} p WHERE p.id = %s AND p.state = %s AND p.deadline > %s "  # noqa: S608 (the models' tables)
        f"AND NOT EXISTS (SELECT FROM {invitations} i WHERE i.id = %s "
        "AND i.revoked_at IS NOT NULL) FOR SHARE OF p",
        [poll.pk, Poll.State.OPEN, now, invitation.pk if invitation else None],
    )
    versions = [version]
    passed, reply_pk = bulk.insert_family(
        reply,
        [(new_lines, "reply_id"), (versions, "reply_id"), ([event], "object_id"),
         *((group, link, versions) for group, link in also)],
        unique=("poll", "agency"), guard=guard, update=_first_answer(poll, agency, now),
    )  # fmt: skip
    if reply_pk is None:
        if alone:
            raise NotInOneStatement
        if not passed:  # closed, cancelled or withdrawn: the general path finds which
            return reply_submit(
                poll=poll, agency=agency, answer=answer, lines=lines, base_version=0,
                invitation=invitation, user=user, request=request, confirm=confirm, now=now,
                channel=channel, member_tally=member_tally,
                stored=READ,
            )  # fmt: skip
        return _lost_race(poll, agency, after)  # another first answer committed a moment ago
    for line in new_lines:
        line.reply = reply
    version.reply = reply  # setting its id forgot the instance
    _saved(version)
    return version


def _first_answer(poll: Poll, agency, now) -> tuple[str, list]:
    """The UPDATE that stamps the agency's invitations to the poll with their first answer."""
    table = Invitation._meta.db_table
    return (
        f"UPDATE {table} SET replied_at = %s "  # noqa: S608 (the model's table)
        "WHERE poll_id = %s AND agency_id = %s AND replied_at IS NULL",
        [now, poll.pk, agency.pk],
    )


def _lost_race(poll: Poll, agency, after: dict) -> None:
    """Another answer for this agency was saved between our read and our write: None when it
    says what ours says (a double submit), else ReplyConflict with it."""
    winner = selectors.stored_reply(poll=poll, agency=agency)
    if _readable(reply_snapshot(winner, winner.lines.all())) == _readable(after):
        return None
    raise ReplyConflict(winner)


def _apply(reply: Reply, answer: dict, lines: list[ReplyLine]) -> None:
    """Set a reply's fields and its totals over the team lines, and the lines' copy of its
    decision (what the dashboard groups by, see ReplyLine)."""
    for field in ("decision", "authorised_by_name", "authorised_by_rank", "conditions",
                  "conditions_text", "decline_reason", "note"):  # fmt: skip
        setattr(reply, field, answer.get(field) or ([] if field == "conditions" else ""))
    for line in lines:
        line.decision = reply.decision
    answering = [line for line in lines if line.officers]
    reply.officers = sum(line.officers for line in answering)
    reply.earliest_arrival_minutes = min((line.arrival_minutes for line in answering), default=None)
    reply.travel_flagged = any(line.travel_flagged for line in answering)


def _line(poll: Poll, data: dict) -> ReplyLine:
    depart, travel = data.get("depart_minutes"), data.get("travel_minutes")
    arrival = depart + travel if depart is not None and travel is not None else None
    estimate = data["estimate"]
    flagged = bool(
        data["officers"]
        and travel is not None
        and travel < estimate * settings.REPLY_TRAVEL_FLAG_RATIO
        and estimate - travel >= settings.REPLY_TRAVEL_FLAG_MIN_MINUTES
    )
    return bulk.new(
        ReplyLine,
        poll=poll,
        team=data["team"],
        officers=data["officers"],
        vehicles=data.get("vehicles"),
        depart_minutes=depart,
        travel_minutes=travel,
        arrival_minutes=arrival,
        deploy_hours=data.get("deploy_hours"),
        # Only asked (the form has the field) when the poll has requirements.
        officers_qualified=data.get("officers_qualified"),
        officers_backed=min(data.get("officers_backed") or 0, data["officers"] or 0),
        estimated_travel_minutes=estimate,
        travel_flagged=flagged,
        team_type_id=data["team"].team_type_id,
        team_level=data["team"].level,
    )
