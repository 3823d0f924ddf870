"""readiness.bulk.bulk_insert: on PostgreSQL by COPY, whose text format must carry every value
as it was (tabs, newlines, backslashes, NULLs, JSON, dates); elsewhere by bulk_create."""

import datetime

import pytest
from django.utils import timezone

from agencies.models import Agency, Contact
from readiness.bulk import bulk_insert, insert_together
from readiness.models import AuditEvent

from .factories import AgencyFactory

pytestmark = pytest.mark.django_db

AWKWARD = 'tab\there, line\nbreak, back\\slash, \\N, quote " and ünïcødé ✓'


def test_awkward_text_json_and_nulls_come_back_as_they_went_in():
    at = timezone.now().replace(microsecond=123456)
    changes = {"note": [None, AWKWARD], "n": [1, 2.5], "ok": [True, False], "nested": {"a": []}}
    assert bulk_insert(AuditEvent, [
        AuditEvent(at=at, action="bulk.test", object_type="x", object_repr=AWKWARD,
                   changes=changes, ip=None),
        AuditEvent(at=at, action="bulk.test", object_type="x", object_repr="", changes={},
                   ip="192.0.2.1"),
    ]) == 2  # fmt: skip
    first, second = AuditEvent.objects.filter(action="bulk.test").order_by("pk")
    assert (first.object_repr, first.changes, first.at, first.ip) == (AWKWARD, changes, at, None)
    assert (second.object_repr, second.changes, second.ip) == ("", {}, "192.0.2.1")


def test_defaults_choices_and_auto_dates_are_stored():
    agency = AgencyFactory()
    before = timezone.now()
    bulk_insert(Contact, [Contact(agency=agency, name="Dana\tNovak", email="dana@pd.example",
                                  quiet_start=datetime.time(22, 0),
                                  quiet_end=datetime.time(6, 30))])  # fmt: skip
    contact = Contact.objects.get(email="dana@pd.example")
    assert contact.name == "Dana\tNovak" and contact.role == Contact.Role.ALTERNATE
    assert (contact.quiet_start, contact.quiet_end) == (datetime.time(22, 0), datetime.time(6, 30))
    assert contact.sms_stopped_at is None
    assert contact.active is True and contact.created_at >= before


def test_a_row_the_database_refuses_fails_them_all_as_django_error():
    from django.db import IntegrityError, transaction

    agency = AgencyFactory()
    rows = [Contact(agency=agency, name="Fine", email="fine@pd.example"),
            Contact(agency=agency, name="Half", email="half@pd.example",
                    quiet_start=datetime.time(22, 0))]  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk_insert(Contact, rows)
    assert not Contact.objects.filter(agency=agency).exists()  # nothing half-written


def test_rows_of_several_models_and_an_update_go_in_together(django_assert_max_num_queries):
    """insert_together: every group's rows and the update, values as they went in (JSON, text,
    NULLs, dates); a group of one gets its pk. On PostgreSQL it is one statement."""
    from django.db import connection

    agency = AgencyFactory()
    at = timezone.now().replace(microsecond=654321)
    event = AuditEvent(at=at, action="together.test", object_type="x", object_repr=AWKWARD,
                       changes={"note": [None, AWKWARD], "n": [1, 2.5]}, ip=None)  # fmt: skip
    contacts = [Contact(agency=agency, name=f"C{k}\tx", email=f"c{k}@pd.example")
                for k in range(3)]  # fmt: skip
    rename = ("UPDATE agencies_agency SET name = %s WHERE id = %s", [AWKWARD[:100], agency.pk])
    statements = 1 if connection.vendor == "postgresql" else 3
    with django_assert_max_num_queries(statements):
        insert_together([contacts, [event]], update=rename)
    stored = AuditEvent.objects.get(action="together.test")
    assert event.pk == stored.pk and (stored.object_repr, stored.at) == (AWKWARD, at)
    assert stored.changes == {"note": [None, AWKWARD], "n": [1, 2.5]}
    names = sorted(Contact.objects.filter(agency=agency).values_list("name", flat=True))
    assert names[-3:] == ["C0\tx", "C1\tx", "C2\tx"]
    agency.refresh_from_db()
    assert agency.name == AWKWARD[:100]


def test_a_part_the_database_refuses_leaves_nothing_of_the_others():
    from django.db import IntegrityError, transaction

    agency = AgencyFactory()
    event = AuditEvent(at=timezone.now(), action="together.refused", object_type="x")
    refused = Contact(agency=agency, name="Half", email="half@pd.example",
                      quiet_start=datetime.time(22, 0))  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_together([[event], [refused]])
    assert not AuditEvent.objects.filter(action="together.refused").exists()


def test_a_value_that_cannot_be_written_midway_fails_them_all_with_its_own_error():
    """The rows are written while the database reads them: an error in the 600th row must
    still reach the caller as itself, with nothing of the first 599 stored."""
    from django.db import transaction

    rows = [AuditEvent(action="stream.test", changes={"n": k}) for k in range(1000)]
    rows[599].changes = {"not json": object()}
    with pytest.raises(TypeError, match="not JSON serializable"), transaction.atomic():
        bulk_insert(AuditEvent, rows)
    assert not AuditEvent.objects.filter(action="stream.test").exists()
    assert bulk_insert(AuditEvent, rows[:599]) == 599  # the connection is fine afterwards
    assert AuditEvent.objects.filter(action="stream.test").count() == 599


def test_rows_beyond_one_chunk_all_arrive_as_they_went_in():
    rows = [
        AuditEvent(action="chunks.test", object_repr=f"{k} {AWKWARD} " * 4) for k in range(3000)
    ]
    assert sum(len(row.object_repr) for row in rows) > 4 * 64 * 1024  # several reads
    assert bulk_insert(AuditEvent, rows) == 3000
    stored = AuditEvent.objects.filter(action="chunks.test").order_by("pk")
    assert [e.object_repr for e in stored] == [row.object_repr for row in rows]


def test_the_row_goes_in_only_when_the_update_changed_one():
    from readiness.bulk import update_then_insert

    agency = AgencyFactory(name="Before")
    rename = "UPDATE agencies_agency SET name = %s WHERE id = %s AND name = %s"
    event = AuditEvent(action="gate.test", object_repr=AWKWARD, changes={"n": [1, 2]})
    assert update_then_insert((rename, ["After", agency.pk, "Before"]), event) is True
    stored = AuditEvent.objects.get(action="gate.test")
    assert (stored.pk, stored.object_repr, stored.changes) == (event.pk, AWKWARD, {"n": [1, 2]})
    again = AuditEvent(action="gate.test", object_repr="second")
    assert update_then_insert((rename, ["Again", agency.pk, "Before"]), again) is False
    assert again.pk is None and AuditEvent.objects.filter(action="gate.test").count() == 1
    agency.refresh_from_db()
    assert agency.name == "After"


def test_a_row_whose_like_is_stored_is_not_inserted_and_says_so():
    from readiness.bulk import insert_unless_taken
    from surveys.models import Reply
    from tests.surveys.factories import PollFactory

    poll, agency, at = PollFactory(), AgencyFactory(), timezone.now()
    unique = ("poll", "agency")  # the constraint's columns
    first = Reply(
        poll=poll,
        agency=agency,
        decision="unavailable",
        decline_reason="None free",
        created_at=at,
        updated_at=at,
    )
    assert (
        insert_unless_taken(first, unique=unique) is True and first.pk and not first._state.adding
    )
    again = Reply(poll=poll, agency=agency, decision="available", created_at=at, updated_at=at)
    assert insert_unless_taken(again, unique=unique) is False and again.pk is None
    assert list(Reply.objects.values_list("pk", "decision")) == [(first.pk, "unavailable")]


@pytest.mark.services
def test_a_family_goes_in_in_one_statement_or_not_at_all(postgres, django_assert_num_queries):
    """insert_family (PostgreSQL): the parent only where the guard finds a row and no like is
    stored; its children and the update only with it, each child pointing at it (an id, or
    its text); values typed as their columns, a string too long failing, not cut."""
    from django.db import DataError

    from readiness.bulk import insert_family
    from surveys.models import Poll, Reply, ReplyLine
    from tests.factories import SpecialTeamFactory
    from tests.surveys.factories import PollFactory

    poll, agency, at = PollFactory(state="open"), AgencyFactory(), timezone.now()
    teams = [SpecialTeamFactory(agency=agency) for _ in range(2)]
    open_poll = ("SELECT FROM surveys_poll WHERE id = %s AND state = %s", [poll.pk, "open"])
    rename = ("UPDATE agencies_agency SET name = %s WHERE id = %s", ["Answered", agency.pk])

    def family(**reply):
        parent = Reply(poll=poll, agency=agency, decision="available", created_at=at,
                       updated_at=at, conditions=["other"], note=AWKWARD, **reply)  # fmt: skip
        lines = [
            ReplyLine(poll=poll, team=team, team_type_id=team.team_type_id, team_level=1,
                      officers=n, decision="available", estimated_travel_minutes=60,
                      depart_minutes=10, travel_minutes=60, arrival_minutes=70)
            for n, team in zip((3, 4), teams, strict=True)
        ]  # fmt: skip
        event = AuditEvent(at=at, action="family.test", object_type="reply", changes={"n": 1})
        return parent, lines, event

    reply, lines, event = family()
    Poll.objects.filter(pk=poll.pk).update(state="closed")
    assert insert_family(
        reply,
        [(lines, "reply_id"), ([event], "object_id")],
        unique=("poll", "agency"),
        guard=open_poll,
        update=rename,
    ) == (False, None)
    assert not Reply.objects.exists() and not ReplyLine.objects.exists()
    assert not AuditEvent.objects.filter(action="family.test").exists()

    Poll.objects.filter(pk=poll.pk).update(state="open")
    with django_assert_num_queries(1):
        passed, pk = insert_family(
            reply,
            [(lines, "reply_id"), ([event], "object_id")],
            unique=("poll", "agency"),
            guard=open_poll,
            update=rename,
        )
    assert passed and pk == reply.pk and not reply._state.adding
    stored = Reply.objects.get()
    assert (stored.pk, stored.note, stored.conditions) == (pk, AWKWARD, ["other"])
    assert sorted(ReplyLine.objects.filter(reply=stored).values_list("officers", flat=True)) == [
        3,
        4,
    ]
    assert all(line.reply_id == pk for line in lines)
    assert AuditEvent.objects.get(pk=event.pk).object_id == str(pk) == event.object_id
    agency.refresh_from_db()
    assert agency.name == "Answered"

    again, lines, event = family()  # its like is stored: nothing, and the update does not run
    rename[1][0] = "Twice"
    assert insert_family(
        again,
        [(lines, "reply_id"), ([event], "object_id")],
        unique=("poll", "agency"),
        guard=open_poll,
        update=rename,
    ) == (True, None)
    assert Reply.objects.count() == 1 and ReplyLine.objects.count() == 2
    agency.refresh_from_db()
    assert agency.name == "Answered"

    Reply.objects.all().delete()
    too_long, lines, event = family(authorised_by_name="x" * 1000)
    with pytest.raises(DataError):
        insert_family(too_long, [(lines, "reply_id")], unique=("poll", "agency"), guard=open_poll)


@pytest.mark.services
def test_a_familys_rows_may_point_at_a_child_or_at_nothing(postgres, monkeypatch):
    """A group may take an earlier child's pk instead of the parent's (a text's message, its
    answer's version), or none (the links its reply gives); all go in only with the parent.
    A family's statement is worked out once per shape."""
    from readiness import bulk
    from readiness.bulk import insert_family

    shapes = []
    monkeypatch.setattr(bulk, "_FAMILIES", {})
    monkeypatch.setattr(bulk, "_family_sql", lambda c, shape, make=bulk._family_sql: (
        shapes.append(shape) or make(c, shape)))  # fmt: skip
    from surveys.models import Poll, Reply, ReplyLine
    from tests.factories import SpecialTeamFactory
    from tests.surveys.factories import PollFactory

    poll, agency, at = PollFactory(state="open"), AgencyFactory(), timezone.now()
    team = SpecialTeamFactory(agency=agency)
    open_poll = ("SELECT FROM surveys_poll WHERE id = %s AND state = %s", [poll.pk, "open"])

    def family():
        reply = Reply(poll=poll, agency=agency, decision="available", created_at=at,
                      updated_at=at)  # fmt: skip
        line = ReplyLine(poll=poll, team=team, team_type_id=team.team_type_id, team_level=1,
                         officers=0, decision="available", estimated_travel_minutes=60)  # fmt: skip
        lines = [line]
        of_line = AuditEvent(at=at, action="family.line", object_type="replyline", changes={})
        loose = [AuditEvent(at=at, action="family.loose", object_type="x", object_id=str(n),
                            changes={}) for n in (1, 2)]  # fmt: skip
        return reply, [(lines, "reply_id"), ([of_line], "object_id", lines), (loose, None)]

    Poll.objects.filter(pk=poll.pk).update(state="closed")
    reply, children = family()
    assert insert_family(reply, children, unique=("poll", "agency"), guard=open_poll) == (
        False,
        None,
    )
    assert not AuditEvent.objects.filter(action__startswith="family.").exists()

    Poll.objects.filter(pk=poll.pk).update(state="open")
    reply, children = family()
    passed, pk = insert_family(reply, children, unique=("poll", "agency"), guard=open_poll)
    line, of_line = children[0][0][0], children[1][0][0]
    assert passed and ReplyLine.objects.get().reply_id == pk == line.reply_id
    stored = AuditEvent.objects.get(action="family.line")
    assert stored.object_id == str(line.pk) == of_line.object_id and stored.pk == of_line.pk
    loose = AuditEvent.objects.filter(action="family.loose").order_by("object_id")
    assert list(loose.values_list("object_id", flat=True)) == ["1", "2"]
    assert len(shapes) == 1  # the refused family and this one: one shape

    reply, children = family()  # a group may point only at an earlier group of one row
    two = [AuditEvent(at=at, action="family.two", object_type="x", changes={}) for _ in "ab"]
    for wrong in ([(two, None), ([of_line], "object_id", two)], [([of_line], "object_id", two)]):
        with pytest.raises(ValueError, match="earlier group of one"):
            insert_family(reply, wrong, unique=("poll", "agency"), guard=open_poll)


def test_prepared_values_are_the_orms_for_every_kind_of_value():
    """The shortcut for values a field leaves alone (readiness.bulk._preparer) gives what the
    ORM's get_db_prep_save gives, for those and for the values it must convert: a naive
    datetime (made aware, with Django's warning), a choice member, a bool in an integer
    column, a number as text, JSON, None."""
    import warnings

    from django.db import connection

    from readiness import bulk
    from surveys.models import Reply, ReplyLine, ReplyVersion

    naive = datetime.datetime(2026, 12, 1, 9, 30)
    rows = [
        Reply(poll_id=1, agency_id="2", decision=Reply.Decision.AVAILABLE, conditions=["x"],
              officers=True, earliest_arrival_minutes=None, version=1, created_at=naive,
              updated_at=timezone.now(), updated_via_id=None, note=AWKWARD),
        ReplyLine(reply_id=1, poll_id=1, team_id=2, officers=3.0, depart_minutes=0,
                  travel_flagged=1, decision="available", team_type_id=1, team_level=2),
        ReplyVersion(reply_id=1, poll_id=1, number=1, created_at=timezone.now(),
                     author="a <b@c.d>", data={"a": [1, None]}, changes={}, confirmation="due"),
        Contact(agency_id=1, name="Dana", email="d@pd.example", mobile="312 555 0100"),
    ]  # fmt: skip

    def shown(values):  # a JSON adapter by what it carries, not by its identity
        return [getattr(v, "adapted", v) for v in values]

    for row in rows:
        fields = bulk._insert_parts(type(row), connection)[4]
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            orm = [f.get_db_prep_save(bulk._reader(f)(row), connection) for f in fields]
            ours = bulk._prepared(row, fields, connection)
        # auto_now fields read the clock for each: their types only
        fixed = [
            k
            for k, f in enumerate(fields)
            if not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))
        ]
        ours_shown, orm_shown = shown(ours), shown(orm)
        assert [ours_shown[k] for k in fixed] == [orm_shown[k] for k in fixed]
        assert [type(v) for v in ours] == [type(v) for v in orm]


@pytest.mark.django_db(databases=[])
def test_new_builds_what_the_models_own_init_builds_for_every_model():
    """readiness.bulk.new sets the attributes itself (no Model.__init__): for every model of the
    project the instance is the one model(**values) gives, unsaved, defaults included; a
    foreign key's id reads back its related object once saved, and nothing is cached."""
    from django.apps import apps

    from readiness import bulk

    for model in apps.get_models():
        if model._meta.app_label not in ("agencies", "surveys", "readiness", "accounts"):
            continue
        assert bulk._slots(model)[1], f"{model.__name__} is built by __init__ (slower)"
        ours, theirs = bulk.new(model), model()
        assert type(ours) is model and ours._state.adding and ours._state.db is None
        assert ours._state.fields_cache == {}
        ours_values, their_values = dict(vars(ours)), dict(vars(theirs))
        del ours_values["_state"], their_values["_state"]
        assert ours_values.keys() == their_values.keys(), model
        for name in ours_values:
            field = next(f for f in model._meta.concrete_fields if f.attname == name)
            if callable(field.default) and field.default not in (dict, list):
                continue  # a fresh value each time (a token, a clock): compared by type
            assert ours_values[name] == their_values[name], (model, name)
        for name in ours_values:
            assert type(ours_values[name]) is type(their_values[name]), (model, name)
    with pytest.raises(TypeError, match="AuditEvent has no field nope"):
        bulk.new(AuditEvent, nope=1)


def test_new_instances_save_and_relate_like_any_other():
    from readiness import bulk

    agency = AgencyFactory()
    contact = bulk.new(Contact, agency_id=agency.pk, name="Dana", email="dana@pd.example")
    assert contact.agency == agency  # the id's related object, loaded on first use
    contact.save()
    assert Contact.objects.get(pk=contact.pk).name == "Dana" and not contact._state.adding


def test_new_takes_a_foreign_key_by_its_object_and_keeps_it(django_assert_num_queries):
    from readiness import bulk

    agency = AgencyFactory()
    with django_assert_num_queries(0):
        contact = bulk.new(Contact, agency=agency, name="Dana", email="dana@pd.example")
        assert contact.agency_id == agency.pk and contact.agency is agency  # kept: no query
        assert contact._state.db == Contact(agency=agency)._state.db == "default"
        assert bulk.new(AuditEvent, action="x")._state.db is None  # no relation: none yet
        ours, theirs = Agency(name="New"), Agency(name="New")  # unsaved: given one, as by model()
        bulk.new(Contact, agency=ours)
        Contact(agency=theirs)
        assert ours._state.db == theirs._state.db == "default"
        event = bulk.new(AuditEvent, actor=None, action="x")
        assert event.actor_id is None and event.actor is None
    with pytest.raises(TypeError, match="both agency and agency_id"):
        bulk.new(Contact, agency=agency, agency_id=agency.pk)
    with pytest.raises(ValueError, match=r"Contact\.agency must be an instance of Agency"):
        bulk.new(Contact, agency=contact)


@pytest.mark.django_db(databases=[])
def test_a_model_with_an_init_receiver_is_built_by_its_init():
    from django.db.models.signals import post_init

    from readiness import bulk

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Contact)
    try:
        contact = bulk.new(Contact, name="Dana")
    finally:
        post_init.disconnect(receiver, sender=Contact)
    assert seen == [contact]
    assert bulk.new(Contact, name="Lee") not in seen  # disconnected: the fast way again


@pytest.mark.django_db(databases=[])
def test_the_collector_stays_paused_until_the_last_pause_ends():
    import gc

    from readiness.bulk import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("in the middle of an import")
    assert gc.isenabled()  # an error ends the pause too
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # off before: left off
    finally:
        gc.enable()
