"""Database helpers for the hot paths."""

import contextlib

from django.db import connections, transaction


@contextlib.contextmanager
def joins_as_written(using: str = "default"):
    """Run the queries inside without PostgreSQL trying other orders for their joins.

    A lookup of one row with its related rows (select_related over six or seven tables, as an
    answer link's) spends about 2.8 ms in PostgreSQL's planner, which tries every join order,
    and 0.1 ms running: on the answer paths that is more CPU than the rest of the database's
    work. The order Django writes them in (the row found by its key first, then each foreign
    key) is the best one anyway, so the planner is told to keep it (join_collapse_limit = 1,
    0.45 ms) for these queries only: SET LOCAL in a transaction, put back before it ends when
    the caller's transaction goes on. Elsewhere (SQLite) nothing changes.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    outer = connection.in_atomic_block
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL join_collapse_limit = 1")
        yield
        if outer:  # the caller's transaction goes on: its later queries are planned as ever
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL join_collapse_limit TO DEFAULT")
