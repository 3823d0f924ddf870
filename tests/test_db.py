"""readiness.db.Lookup: a query compiled once per process gives what the query gives; on
PostgreSQL it is a statement prepared once per connection, which outlives a rolled-back
transaction and is prepared again on a new connection."""

import datetime

import pytest
from django.db import connection, transaction

from agencies.models import Contact

pytestmark = pytest.mark.django_db


def prepared() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def email_lookup():
    from agencies.models import Contact
    from readiness.db import Lookup

    return Lookup(Contact, lambda email: Contact.objects.filter(email=email).order_by("pk")[:1])


@pytest.mark.services
@pytest.mark.django_db(transaction=True)  # to close the connection mid-test
def test_on_postgresql_a_lookup_is_planned_once_per_connection(postgres):
    from django.test.utils import CaptureQueriesContext

    from tests.factories import ContactFactory

    lookup = email_lookup()
    contact = ContactFactory(email="50%s'off@pd.example")  # quotes and markers are values
    with CaptureQueriesContext(connection) as queries:
        assert lookup.first("50%s'off@pd.example") == contact
        assert lookup.first("nobody@pd.example") is None
    assert [q["sql"].split("(")[0] for q in queries] == [f"EXECUTE {lookup.name}"] * 2
    assert lookup.name in prepared()

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        lookup.first("nobody@pd.example")
        raise ZeroDivisionError  # the statement outlives the rolled-back transaction
    assert lookup.first(contact.email) == contact

    connection.close()  # a new connection has no statements: it prepares its own
    assert lookup.name not in prepared()
    assert lookup.first(contact.email) == contact
    assert lookup.name in prepared()


@pytest.mark.services
def test_a_lookup_on_a_table_that_fills_up_is_planned_on_each_run(postgres):
    """The stored answer by poll and agency: a plan settled on while the poll had no answers
    read every answer of the poll later (it used the poll's index and filtered the agency)."""
    from django.test.utils import CaptureQueriesContext

    from surveys import selectors
    from tests.surveys.factories import PollFactory

    lookup = selectors._STORED_REPLY
    assert lookup.prepared is False
    poll = PollFactory()
    with CaptureQueriesContext(connection) as queries:
        assert lookup.first(poll.pk, 2_000_000) is None
    assert queries[0]["sql"].startswith('SELECT "surveys_reply"."id"')
    assert "ORDER BY" not in queries[0]["sql"]  # one row by its unique key: nothing to sort
    assert lookup.name not in prepared()


def test_a_compiled_lookup_gives_what_the_query_gives_with_its_relations_loaded(
    django_assert_num_queries,
):
    from agencies.models import Contact
    from readiness.db import Lookup
    from tests.factories import AgencyFactory, ContactFactory

    lookup = Lookup(
        Contact,
        lambda email: Contact.objects.select_related("agency__region").filter(email=email)[:1],
    )
    for k in range(3):
        ContactFactory(agency=AgencyFactory(), email=f"c{k}@pd.example", name=f"Chief {k}")
    for k in (0, 2, 1):  # compiled once, each value its own row
        with django_assert_num_queries(1):
            found = lookup.first(f"c{k}@pd.example")
            region = found.agency.region  # loaded with it: no query
        expected = Contact.objects.select_related("agency__region").get(email=f"c{k}@pd.example")
        fields = [f.attname for f in Contact._meta.concrete_fields]
        assert [getattr(found, f) for f in fields] == [getattr(expected, f) for f in fields]
        assert (found.agency.name, region.name) == (
            expected.agency.name,
            expected.agency.region.name,
        )
        assert not found._state.adding and found._state.db == "default"
    assert lookup.first("nobody@pd.example") is None
    assert lookup.first("x' OR '1'='1") is None  # a parameter, never SQL
    assert len(lookup.compiled) == 1


def test_a_lookups_instances_are_built_as_the_querys_own_are():
    """Lookup builds its instances without Model.__init__ (readiness.db._built): each is the
    query's own, attribute for attribute, deferred fields, loaded relations (nested, and one
    that is empty), their state and fetch mode included; a model with an init receiver is
    built by its __init__, which calls it."""
    from django.db.models.signals import post_init

    from agencies.models import Agency, Region
    from readiness.db import FETCH_REST, Lookup, plain_fields
    from readiness.models import User
    from tests.factories import AgencyFactory, UserFactory

    UserFactory(email="commander@pd.example", agency=AgencyFactory())
    UserFactory(email="coordinator@state.example", agency=None)  # an empty relation

    def query(email):
        return (
            User.objects.select_related("agency__region")
            .only("full_name", "role", "agency__name", "agency__region__name")
            .fetch_mode(FETCH_REST)
            .filter(email=email)
        )

    lookup = Lookup(User, query)
    assert all(plain_fields(model) for model in (User, Agency, Region))  # the fast way

    def shown(obj):
        values = {k: v for k, v in vars(obj).items() if k != "_state"}
        state = obj._state
        cached = {k: shown(v) if v is not None else None for k, v in state.fields_cache.items()}
        return values, cached, state.adding, state.db, state.fetch_mode, obj.get_deferred_fields()

    for email in ("commander@pd.example", "coordinator@state.example"):
        (found,), (expected,) = lookup.rows(email), list(query(email))
        assert shown(found) == shown(expected)
    assert found.agency is None and shown(found)[1] == {"agency": None}
    assert shown(found)[4] is FETCH_REST

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(type(instance).__name__)

    post_init.connect(receiver)
    try:
        (found,) = lookup.rows("commander@pd.example")
    finally:
        post_init.disconnect(receiver)
    assert seen == ["User", "Agency", "Region"] and found.agency.region.name


def test_a_model_that_loads_its_rows_its_own_way_keeps_it(monkeypatch):
    """A model with a from_db of its own (e.g. keeping the values it loaded) gets it from a
    Lookup too."""
    from django.db import models

    from readiness.db import Lookup
    from tests.factories import ContactFactory

    ContactFactory(email="own@pd.example")
    loaded_by = []

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        instance = models.Model.from_db.__func__(cls, db, field_names, values, **kwargs)
        loaded_by.append(instance.pk)
        return instance

    monkeypatch.setattr(Contact, "from_db", from_db, raising=False)
    found = Lookup(Contact, lambda email: Contact.objects.filter(email=email)).first(
        "own@pd.example"
    )
    assert loaded_by == [found.pk]


def test_a_lookup_by_several_values_gives_its_rows_in_order():
    from agencies.models import SpecialTeam
    from readiness.db import Lookup
    from tests.factories import AgencyFactory, SpecialTeamFactory

    lookup = Lookup(
        SpecialTeam,
        lambda agency_id, members: SpecialTeam.objects.filter(
            agency_id=agency_id, members__gte=members
        ).select_related("team_type").order_by("-members"),
        kinds=(int, int),
    )  # fmt: skip
    agency, other = AgencyFactory(), AgencyFactory()
    for members in (5, 30, 12):
        SpecialTeamFactory(agency=agency, members=members)
    SpecialTeamFactory(agency=other, members=50)
    assert [t.members for t in lookup.rows(agency.pk, 10)] == [30, 12]
    assert [t.members for t in lookup.rows(other.pk, 1)] == [50]
    assert lookup.rows(agency.pk, 31) == [] and lookup.first(agency.pk, 31) is None
    assert lookup.first(agency.pk, 1).team_type.name  # loaded with it


def test_every_compiled_lookup_of_the_answer_paths_compiles_and_finds_nothing_unknown():
    """Each is compiled on its first use in a process: a query that cannot be compiled (a
    marker folded away) must fail here, not on a production request."""
    from surveys import geo, members, selectors

    lookups = {
        selectors._BY_TOKEN: ("no-such-hash",),
        selectors._BY_TOKEN_PAGE: ("no-such-hash",),
        selectors._BY_EARLIER_TOKEN: ("no-such-hash",),
        selectors._BY_EARLIER_TOKEN_PAGE: ("no-such-hash",),
        selectors._STORED_REPLY: (1, 1),
        selectors._ACTIVE_TEAMS: (1,),
        selectors._OPEN_TEXTS: ("+13125550142",),
        selectors._SEEN: ("sms", "SM-no-such-message"),
        members._BY_TOKEN: ("no-such-hash",),
        geo._PLACE: ("nowhere", "nowhere"),
    }
    for lookup, values in lookups.items():
        assert lookup.rows(*values) == []


def test_an_instance_loaded_by_hand_is_what_only_gives(django_assert_num_queries):
    from agencies.models import Agency, Contact
    from readiness.db import loaded
    from tests.factories import ContactFactory

    stored = ContactFactory(name="Chief Ada", email="ada@pd.example")
    agency = loaded(Agency, {"id": stored.agency_id, "name": stored.agency.name})
    with django_assert_num_queries(0):
        values = {"id": stored.pk, "name": "Chief Ada", "agency_id": stored.agency_id}
        contact = loaded(Contact, values, related={"agency": agency})
        assert (contact.pk, contact.name, contact.agency.name) == (
            stored.pk, "Chief Ada", stored.agency.name,
        )  # fmt: skip
        assert contact == stored and not contact._state.adding
    assert contact.get_deferred_fields() >= {"email"}
    with django_assert_num_queries(1):
        assert contact.email == "ada@pd.example"  # a deferred field, read on first use
    contact.name = "Chief Ada Lovelace"
    contact.save(update_fields=["name"])
    assert Contact.objects.get(pk=stored.pk).name == "Chief Ada Lovelace"


@pytest.mark.services
@pytest.mark.django_db(transaction=True)  # to close the connection mid-test
def test_on_postgresql_the_answer_paths_writes_are_prepared_once_per_connection(postgres):
    """readiness.db.execute (bulk's one-statement writes): the same statement is EXECUTEd each
    time, past the runs after which PostgreSQL keeps a generic plan, with every kind of value
    as it went in; a refused row fails only its own transaction; a new connection prepares its
    own; a statement of more values than PREPARED_MAX_PARAMS runs as it is."""
    from django.db import IntegrityError
    from django.test.utils import CaptureQueriesContext

    from readiness import db
    from readiness.bulk import insert_together
    from readiness.models import AuditEvent
    from tests.factories import AgencyFactory

    agency = AgencyFactory()
    awkward = '50%s\'off \\N %% "quoted"'
    with CaptureQueriesContext(connection) as queries:
        for k in range(8):
            insert_together([[AuditEvent(action="prepared.test", object_repr=f"{awkward} {k}",
                                         changes={"k": k, "text": awkward}, ip="192.0.2.1")]],
                            update=("UPDATE agencies_agency SET name = %s WHERE id = %s",
                                    [f"{awkward} {k}"[:100], agency.pk]))  # fmt: skip
    names = {q["sql"].split("(")[0] for q in queries}
    assert len(names) == 1 and names.pop().startswith("EXECUTE readiness_")
    stored = list(AuditEvent.objects.filter(action="prepared.test").order_by("pk"))
    assert [(e.object_repr, e.changes, e.ip) for e in stored] == [
        (f"{awkward} {k}", {"k": k, "text": awkward}, "192.0.2.1") for k in range(8)
    ]
    agency.refresh_from_db()
    assert agency.name == f"{awkward} 7"[:100]
    name = next(iter(set(db._STATEMENTS.values()) & prepared()))

    # Quiet hours with a start and no end: the database refuses the contact.
    refused = Contact(agency=agency, name="Half", email="half@pd.example",
                      quiet_start=datetime.time(22, 0))  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_together([[AuditEvent(action="prepared.refused")], [refused]])
    assert not AuditEvent.objects.filter(action="prepared.refused").exists()
    insert_together([[AuditEvent(action="prepared.after")]])  # the connection is fine
    assert AuditEvent.objects.filter(action="prepared.after").exists()

    connection.close()  # a new connection has none of them: it prepares its own
    assert name not in prepared()
    insert_together([[AuditEvent(action="prepared.test")]])
    assert AuditEvent.objects.filter(action="prepared.test").count() == 9

    many = [AuditEvent(action="prepared.many") for _ in range(60)]  # over 400 values
    with CaptureQueriesContext(connection) as queries:
        insert_together([many])
    assert queries[0]["sql"].startswith("WITH i0 AS (INSERT INTO")
    assert AuditEvent.objects.filter(action="prepared.many").count() == 60


@pytest.mark.services
def test_a_statement_postgresql_will_not_prepare_runs_as_it_is_and_keeps_the_transaction(
    postgres, caplog
):
    """Parameters whose types PostgreSQL cannot work out (%s + %s) fail the PREPARE:
    in a transaction only the PREPARE is undone (a savepoint), the statement runs unprepared
    from then on, and the transaction goes on to commit its work."""
    from django.test.utils import CaptureQueriesContext

    from readiness import db
    from readiness.models import AuditEvent

    sql = "SELECT %s + %s, 'unpreparable test'"
    with transaction.atomic():
        AuditEvent.objects.create(action="prepare.kept")
        with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
            db.execute(cursor, sql, [40, 2])
            assert cursor.fetchone() == (42, "unpreparable test")
            db.execute(cursor, sql, [1, 2])
            assert cursor.fetchone()[0] == 3
    assert [q["sql"] for q in queries] == [
        "SELECT 40 + 2, 'unpreparable test'",
        "SELECT 1 + 2, 'unpreparable test'",
    ]
    assert AuditEvent.objects.filter(action="prepare.kept").exists()  # the transaction went on
    assert "would not prepare" in caplog.text
    db._UNPREPARABLE.discard(sql)
