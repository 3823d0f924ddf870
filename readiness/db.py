"""Database helpers for the hot paths."""

import contextlib
import copy

from django.db import connections, router, transaction


@contextlib.contextmanager
def joins_as_written(using: str = "default"):
    """Run the queries inside without PostgreSQL trying other orders for their joins.

    A lookup of one row with its related rows (select_related over six or seven tables, as an
    answer link's) spends about 2.8 ms in PostgreSQL's planner, which tries every join order,
    and 0.1 ms running: on the answer paths that is more CPU than the rest of the database's
    work. The order Django writes them in (the row found by its key first, then each foreign
    key) is the best one anyway, so the planner is told to keep it (join_collapse_limit = 1,
    0.45 ms) for these queries only: set for the transaction, and put back as it was when the
    caller's transaction goes on. Elsewhere (SQLite) nothing changes.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    outer = connection.in_atomic_block
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('join_collapse_limit'), "
                "set_config('join_collapse_limit', '1', true)"
            )
            before = cursor.fetchone()[0]
        yield
        if outer:  # the caller's transaction goes on: its later queries are planned as before
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('join_collapse_limit', %s, true)", [before])


class Lookup:
    """A query by a few values (a link's token hash; a poll and an agency), compiled once per
    process instead of on every request, its rows turned into model instances as Django's own
    iterator does (the select_related ones cached on each).

    Why: compiling a select_related query over seven tables costs Django about 1 ms of CPU, a
    fifth of a member's answer. `queryset(*values)` builds the query for the values; it is
    built once with markers, and each call runs the same SQL with the values in the markers'
    places. Uses Django's row-to-instance machinery (ModelIterable's), which tests pin down.
    Shared by a process's threads: nothing in it changes after compiling.
    """

    def __init__(self, model, queryset, *, kinds: tuple = (str,)):
        """`kinds`: each value's type (str or int), or a marker of its own for a field that
        checks its values (a phone number the field accepts, which no real one equals)."""
        self.model, self.queryset, self.kinds = model, queryset, kinds
        self.compiled: dict[str, tuple] = {}

    def first(self, *values):
        rows = self.rows(*values)
        return rows[0] if rows else None

    def rows(self, *values) -> list:
        db = router.db_for_read(self.model)
        compiled = self.compiled.get(db)
        if compiled is None:
            compiled = self.compiled[db] = self._compile(db)
        sql, params, places, compiler, parts = compiled
        params = list(params)
        for at, value in zip(places, values, strict=True):
            params[at] = value
        connection = connections[db]  # this thread's
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        from_db, init_list, start, end, populators = parts
        compiler = copy.copy(compiler)  # the compiled state, with this thread's connection
        compiler.connection = connection
        objs = []
        for row in compiler.results_iter(results=[fetched]):  # the fields' converters
            obj = from_db(db, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            objs.append(obj)
        return objs

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
        if compiler.annotation_col_map or queryset._known_related_objects:
            raise ValueError("Lookup takes plain select_related queries")
        if queryset._prefetch_related_lookups:
            raise ValueError("Lookup does not prefetch: call prefetch_related_objects after")
        fetch_mode = queryset._fetch_mode
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [f[0].target.attname for f in select[start:end]]
        populators = get_related_populators(klass_info, select, db, fetch_mode)
        from_db = _get_from_db(klass_info["model"], fetch_mode)
        places = [found[0] for found in places]
        return sql, tuple(params), places, compiler, (from_db, init_list, start, end, populators)
