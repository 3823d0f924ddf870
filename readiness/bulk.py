"""Inserting many rows at once, when their ids are not needed back: on PostgreSQL by COPY (one
statement streaming every row, with no SQL to build and no parameters to adapt per batch),
elsewhere by bulk_create. Same transaction, same constraints: a bad row fails the whole COPY,
so an all-or-nothing caller stays all or nothing."""

import datetime
import io
import json
import re
import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.db import connections, models, router
from django.db.models.fields import AutoFieldMixin

ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def bulk_insert(model, objs: Iterable, *, batch_size: int = 1000) -> int:
    """Insert `objs` (unsaved instances of `model`); returns how many. Their pk stays unset."""
    objs = list(objs)
    if not objs:
        return 0
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=batch_size)
        return len(objs)
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoFieldMixin)]
    pairs = [(_reader(f), _converter(f, connection)) for f in fields]
    buffer = io.StringIO()
    write = buffer.write
    for obj in objs:
        write("\t".join(convert(read(obj)) for read, convert in pairs))
        write("\n")
    buffer.seek(0)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    # The driver's own COPY, its errors turned into Django's (DatabaseError, IntegrityError).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.cursor.copy_expert(
            f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN", buffer
        )
    return len(objs)


def _reader(field):
    """How to read the value to store: pre_save where the field sets it (auto_now and
    auto_now_add), else the attribute as it is."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, True)
    attname = field.attname
    return lambda obj: getattr(obj, attname)


NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def _converter(field, connection):
    """A function from one value of `field` to COPY's text format, chosen once per field."""

    def escaped(text: str) -> str:
        return text.translate(ESCAPES) if NEEDS_ESCAPE.search(text) else text

    if isinstance(field, models.JSONField):
        return lambda v: "\\N" if v is None else escaped(json.dumps(v, cls=field.encoder))

    def convert(value) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, str):  # CharField and its kin: stored as given
            return escaped(value)
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, int | float | Decimal | uuid.UUID):
            return str(value)
        if isinstance(value, datetime.datetime | datetime.date | datetime.time):
            return value.isoformat()
        value = field.get_db_prep_save(value, connection)
        return "\\N" if value is None else escaped(str(value))

    return convert


def insert_together(groups: list[list], *, update: tuple[str, list] | None = None) -> None:
    """Insert several models' rows in one statement on PostgreSQL, each group a list of unsaved
    instances of one model (e.g. an answer's team lines, its version and its audit event);
    `update`, an UPDATE's SQL and parameters, runs in the same statement. A group of one gets
    its pk set. Elsewhere, one statement each, as the ORM does.

    One round trip and no query compiling. Data-modifying CTEs all see the same snapshot, so
    no part may read what another writes."""
    groups = [group for group in groups if group]
    connection = connections[router.db_for_write(type(groups[0][0]))]
    if connection.vendor != "postgresql":
        for group in groups:
            type(group[0]).objects.bulk_create(group)
        if update:
            with connection.cursor() as cursor:
                cursor.execute(*update)
        return
    quote = connection.ops.quote_name
    parts, params, returned = [], [], []
    for k, group in enumerate(groups):
        meta = type(group[0])._meta
        fields = [f for f in meta.concrete_fields if not isinstance(f, AutoFieldMixin)]
        readers = [(_reader(f), f) for f in fields]
        row = f"({', '.join(['%s'] * len(fields))})"
        pk = quote(meta.pk.column)
        parts.append(
            f"i{k} AS (INSERT INTO {quote(meta.db_table)} "  # noqa: S608 (names from the models)
            f"({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES {', '.join([row] * len(group))} RETURNING {pk})"
        )
        params += [
            f.get_db_prep_save(read(obj), connection) for obj in group for read, f in readers
        ]
        first = f"(SELECT {pk} FROM i{k})"  # noqa: S608 (a CTE's name)
        returned.append(first if len(group) == 1 else "NULL")
    if update:
        parts.append(f"u AS ({update[0]})")
        params += list(update[1])
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT {', '.join(returned)}", params)
        pks = cursor.fetchone()
    for group, pk in zip(groups, pks, strict=True):
        if len(group) == 1:
            group[0].pk = pk
