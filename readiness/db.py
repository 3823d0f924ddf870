"""Database helpers for the hot paths."""

import functools
import hashlib
import itertools
import logging
import re

from django.db import connections, models, router
from django.db.models.base import ModelState
from django.db.models.fetch_modes import FetchMode
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

logger = logging.getLogger(__name__)


class Lookup:
    """A query by a few values (a link's token hash; a poll and an agency), compiled once per
    process instead of on every request, its rows turned into model instances as Django's own
    iterator does (the select_related ones cached on each).

    Why: compiling a select_related query over seven tables costs Django about 1 ms of CPU, a
    fifth of a member's answer. `queryset(*values)` builds the query for the values; it is
    built once with markers, and each call runs the same SQL with the values in the markers'
    places. Uses Django's row-to-instance machinery (ModelIterable's), which tests pin down.
    Shared by a process's threads: nothing in it changes after compiling.

    On PostgreSQL the query is also planned once per connection: a prepared statement
    (PREPARE on the connection's first use, then EXECUTE). Planning a lookup over six tables
    costs PostgreSQL 1.4 ms of CPU, running it 0.3 ms: on an answer link's page that was a
    third of the database's work. The statement lives as long as the connection (a persistent
    one, DB_CONN_MAX_AGE); a pooler that hands one server connection to several clients between
    transactions (PgBouncer's transaction mode) does not keep such statements: connect directly.
    """

    _names = itertools.count(1)

    def __init__(self, model, queryset, *, kinds: tuple = (str,), prepared: bool = True):
        """`kinds`: each value's type (str or int), or a marker of its own for a field that
        checks its values (a phone number the field accepts, which no real one equals)."""
        self.model, self.queryset, self.kinds = model, queryset, kinds
        self.prepared = prepared
        self.compiled: dict[str, tuple] = {}
        self._statements: dict[str, tuple] = {}
        self.name = f"readiness_lookup_{next(self._names)}"

    def first(self, *values):
        rows = self.rows(*values)
        return rows[0] if rows else None

    def rows(self, *values) -> list:
        db = router.db_for_read(self.model)
        compiled = self.compiled.get(db)
        if compiled is None:
            compiled = self.compiled[db] = self._compile(db)
        sql, params, places, converters, parts = compiled
        if len(values) != len(places):
            raise TypeError(f"{len(places)} value(s) looked up, {len(values)} given")
        connection = connections[db]  # this thread's
        with connection.cursor() as cursor:
            statement = self._statement(connection, db, sql, params, places)
            if statement and _prepare(connection, self.name, statement[0]):
                sql = f"EXECUTE {self.name}({', '.join(['%s'] * len(places))})"
                params = [values[k] for k in statement[1]]
            else:  # the query itself, the values in their places
                params = list(params)
                for at, value in zip(places, values, strict=True):
                    params[at] = value
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        from_db, init_list, start, end, populators = parts
        objs = []
        for row in fetched:
            if converters:  # the fields' own, as results_iter applies them
                row = list(row)
                for at, (convert, expression) in converters:
                    value = row[at]
                    for converter in convert:
                        value = converter(value, expression, connection)
                    row[at] = value
            obj = from_db(db, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            objs.append(obj)
        return objs

    def _statement(self, connection, db: str, sql: str, params: tuple, places: list):
        """What to PREPARE on PostgreSQL (None elsewhere, or unprepared): the query with the
        values the code fixes (a channel, the states taking answers) written into it, only the
        looked-up values left as parameters, and those values' order in it.

        Why: a plan kept for every run (a generic plan) knows only what the statement says; with
        `channel = $1` it cannot use an index whose condition names the channel (a partial
        index), and it guesses how many rows match. The texts' lookup by sender read every
        invitation (0.6 ms of PostgreSQL's CPU per text at 3,000 agencies) instead of using
        the index on (mobile, reply code) of invitations with a mobile number."""
        if not self.prepared or connection.vendor != "postgresql":
            return None
        statement = self._statements.get(db)
        if statement is None:
            statement = self._statements[db] = _with_constants(connection, sql, params, places)
        return statement

    def _compile(self, db: str) -> tuple:
        from django.db.models.query import _get_from_db, get_related_populators

        # Markers the fields take as they are (an integer in every integer field's range: one
        # out of range would be folded away by Django, and refused below).
        markers = [f"\x00readiness-lookup-{k}\x00" if kind is str
                   else 2_147_000_001 + k if kind is int else kind
                   for k, kind in enumerate(self.kinds)]  # fmt: skip
        queryset = self.queryset(*markers).using(db)
        if queryset.model is not self.model or queryset._fetch_mode.track_peers:
            raise ValueError("Lookup takes a query of its model, fetching one row at a time")
        compiler = queryset.query.get_compiler(using=db)
        sql, params = compiler.as_sql()
        places = [[k for k, p in enumerate(params) if p == marker] for marker in markers]
        if any(len(found) != 1 for found in places):
            raise ValueError("each value must be one parameter of the query")
        select, klass_info = compiler.select, compiler.klass_info
        fields = [column[0] for column in select[0 : compiler.col_count]]
        if compiler.has_composite_fields(fields):
            raise ValueError("Lookup does not take composite fields")
        # Found once, not per call (the backend's are methods of this thread's connection's
        # operations, which read only settings that every connection shares).
        converters = list(compiler.get_converters(fields).items())
        if compiler.annotation_col_map or queryset._known_related_objects:
            raise ValueError("Lookup takes plain select_related queries")
        if queryset._prefetch_related_lookups:
            raise ValueError("Lookup does not prefetch: call prefetch_related_objects after")
        fetch_mode = queryset._fetch_mode
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [f[0].target.attname for f in select[start:end]]
        populators = get_related_populators(klass_info, select, db, fetch_mode)
        from_db = _built(
            klass_info["model"],
            init_list,
            _get_from_db(klass_info["model"], fetch_mode),
            fetch_mode,
        )
        _build_related(populators, fetch_mode)
        places = [found[0] for found in places]
        return sql, tuple(params), places, converters, (from_db, init_list, start, end, populators)


@functools.cache
def plain_fields(model) -> tuple[str, ...]:
    """The attnames of `model`'s concrete fields, in their order, if setting them in an
    instance's __dict__ is all Model.__init__ does with them (a model that does not override
    __init__, whose fields' attributes do not set themselves in ways of their own), else ().
    A foreign key's id attribute sets itself (ForeignKeyDeferredAttribute.__set__) only to
    drop a cached related object, which a new instance does not have."""
    fields = model._meta.concrete_fields
    plain = model.__init__ is models.Model.__init__ and all(
        type(vars(model).get(f.attname)) in (DeferredAttribute, ForeignKeyDeferredAttribute)
        or not hasattr(getattr(model, f.attname, None), "__set__")
        for f in fields
    )
    return tuple(f.attname for f in fields) if plain else ()


def _built(model, field_names, from_db, fetch_mode):
    """`from_db` (model.from_db, its fetch mode bound) for rows of `field_names`, or its
    equivalent without Model.__init__ for a model of plain fields (as loaded() builds): an
    invitation with its poll, agency and contact took 60 µs to build, 20 µs this way. As
    from_db, the values come in the order of the model's fields."""
    names = plain_fields(model)
    if not names or model.from_db.__func__ is not models.Model.from_db.__func__:
        return from_db  # a model that loads its rows its own way keeps it
    names = tuple(name for name in names if name in field_names)

    def build(db, field_names, values):
        if pre_init.receivers or post_init.receivers or len(values) != len(names):
            return from_db(db, field_names, values)
        obj = bare(model, zip(names, values, strict=True), db=db)
        if fetch_mode is not None:
            obj._state.fetch_mode = fetch_mode
        return obj

    return build


def _build_related(populators, fetch_mode) -> None:
    """Each select_related model of a Lookup built as _built builds (RelatedPopulator calls its
    `from_db` attribute; a Django without it calls the model's from_db, as slowly as ever)."""
    for populator in populators:
        if hasattr(populator, "from_db"):
            populator.from_db = _built(
                populator.model_cls, populator.init_list, populator.from_db, fetch_mode
            )
        _build_related(populator.related_populators, fetch_mode)


class FetchRest(FetchMode):
    """A fetch mode (QuerySet.fetch_mode) for instances loaded lean, with only what the common
    path reads (.only()): the first read of a deferred field loads every field still deferred,
    in one query, where Django's FETCH_ONE would make one query per field read. The answer
    link's POST reads a few of its poll's 37 columns and redirects; the page shown again for a
    mistake reads most of them, in one query more. Related objects load as with FETCH_ONE."""

    __slots__ = ()

    def fetch(self, fetcher, instance):
        deferred = instance.get_deferred_fields()
        if isinstance(fetcher, DeferredAttribute) and deferred:
            instance.refresh_from_db(fields=sorted(deferred))
        else:
            fetcher.fetch_one(instance)

    def __reduce__(self):
        return "FETCH_REST"


FETCH_REST = FetchRest()


def loaded(model, values: dict, *, db: str = "default", related: dict | None = None):
    """An instance of `model` as a query loading only `values` (attribute names: "team_id")
    gives it, the other fields deferred (read from the database on first use, as after
    .only()); `related` are its related objects already loaded ({"member": TeamMember}).

    Built without Model.__init__, which costs about 25 µs per row for a model of twenty fields
    (and sends pre_init and post_init, which no model of this project listens to): a page
    that lists a team's 500 members' answers built them in 28 ms, their values in 3 ms."""
    return bare(model, values, db=db, related=related)


def bare(model, values, *, db: str | None = None, related: dict | None = None):
    """An instance of `model` with `values` (attnames and values: a dict, or pairs) set in its
    __dict__ and nothing else done, as loaded from `db`, or new (`db` None); `related`, its
    related objects, cached. What loaded(), Lookup (_built) and readiness.bulk.new build on,
    each after checking that Model.__init__ would do no more."""
    obj = model.__new__(model)
    obj.__dict__.update(values)
    state = obj._state = ModelState()
    if db is not None:
        state.adding, state.db = False, db
    if related:
        state.fields_cache = dict(related)
    return obj


def execute(cursor, sql: str, params: list) -> None:
    """Run a write of the answer paths (one statement of readiness.bulk's) on `cursor`, a
    cursor of the connection it belongs to; on PostgreSQL prepared on the connection the first
    time (as Lookup's queries are), then EXECUTEd.

    Why: PostgreSQL parses, analyses and plans an answer's one statement (its reply, lines,
    version, audit event and invitations' stamp: 3.8 KB of SQL) in 0.4 ms of CPU, and runs
    it in 0.2 ms. The plans are generic after the fifth run: these statements find rows by
    primary key or unique constraint, or by the columns of the row being written (a subquery
    planned the same whatever the values), so no value makes a worse plan; a plan is made
    again when the tables are analysed. Only statements of up to PREPARED_MAX_PARAMS values,
    and at most PREPARED_MAX_STATEMENTS shapes per process: a shape is its SQL (the number of
    rows included), and a batch's is seldom run twice. A statement PostgreSQL will not
    prepare runs as it is."""
    connection = cursor.db
    if (connection.vendor != "postgresql" or not params or len(params) > PREPARED_MAX_PARAMS
            or sql in _UNPREPARABLE):  # fmt: skip
        cursor.execute(sql, params)
        return
    name = _STATEMENTS.get(sql)
    if name is None:
        if len(_STATEMENTS) >= PREPARED_MAX_STATEMENTS:
            cursor.execute(sql, params)
            return
        # Named by its SQL: the same name is the same statement in every process.
        digest = hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:24]
        name = _STATEMENTS.setdefault(sql, f"readiness_{digest}")
    if not _prepare(connection, name, sql, named_by_sql=True):
        _UNPREPARABLE.add(sql)
        cursor.execute(sql, params)
        return
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params)


PREPARED_MAX_PARAMS = 400
PREPARED_MAX_STATEMENTS = 200
_STATEMENTS: dict[str, str] = {}  # SQL -> its prepared statement's name, for every connection
_UNPREPARABLE: set[str] = set()  # SQL that PostgreSQL refused to prepare: run as it is


def _prepare(connection, name: str, sql: str, *, named_by_sql: bool = False) -> bool:
    """PREPARE `sql` as `name` on this connection unless it was (on this very connection: a new
    one after a reconnect has none); False when PostgreSQL refuses (logged), which in a
    transaction rolls back only the PREPARE. A statement of that name prepared already (by a
    session a pooler kept) is this one if `named_by_sql`, else refused. Not counted as a
    query: it happens once. A statement prepared in a transaction stays when the transaction
    rolls back."""
    raw = connection.connection
    prepared = getattr(connection, "readiness_prepared", None)
    if prepared is None or prepared[0] is not raw:
        prepared = connection.readiness_prepared = (raw, set())
    if name in prepared[1]:
        return True
    numbered = itertools.count(1)
    statement = _PLACEHOLDER.sub(
        lambda m: f"${next(numbered)}" if m[0] == "%s" else "%", sql
    )  # psycopg2's %s in order, its %% a plain %
    import psycopg2

    with raw.cursor() as cursor:
        guarded = connection.in_atomic_block  # a failed statement would end the transaction
        if guarded:
            cursor.execute("SAVEPOINT readiness_prepare")
        try:
            cursor.execute(f"PREPARE {name} AS {statement}")
        except psycopg2.Error as exc:
            duplicate = isinstance(exc, psycopg2.errors.DuplicatePreparedStatement)
            if guarded:
                cursor.execute("ROLLBACK TO SAVEPOINT readiness_prepare")
                cursor.execute("RELEASE SAVEPOINT readiness_prepare")
            if duplicate and named_by_sql:
                prepared[1].add(name)
                return True
            logger.warning("PostgreSQL would not prepare %s (%s): running it as it is",
                           name, exc.pgcode or type(exc).__name__)  # fmt: skip
            return False
        if guarded:
            cursor.execute("RELEASE SAVEPOINT readiness_prepare")
    prepared[1].add(name)
    return True


def _with_constants(connection, sql: str, params: tuple, places: list) -> tuple[str, list]:
    """`sql` with every parameter but the looked-up ones (at `places`) written in as the
    driver quotes it, and the looked-up values' indexes in the order they appear."""
    keep, found = set(places), itertools.count()
    with connection.connection.cursor() as raw:

        def placeholder(match) -> str:
            if match[0] == "%%":
                return "%%"
            k = next(found)
            if k in keep:
                return "%s"
            return raw.mogrify("%s", [params[k]]).decode().replace("%", "%%")

        statement = _PLACEHOLDER.sub(placeholder, sql)
    order = sorted(range(len(places)), key=lambda marker: places[marker])
    return statement, order


_PLACEHOLDER = re.compile(r"%[s%]")
