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
