"""Sessions kept in the database as Django's own backend keeps them (the same table and rows),
read on every signed-in request, on PostgreSQL, by a query compiled once per process and
prepared once per connection (readiness.db.Lookup): Django compiles its query each time.
Elsewhere (SQLite, whose driver takes the time as text) Django's own read."""

import datetime
import logging

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.core.exceptions import SuspiciousOperation
from django.db import connections, router
from django.utils import timezone

from readiness.db import Lookup

# Stands for "now" while the query is compiled: a moment no session expires at.
_NOW = datetime.datetime(1970, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
_LIVE = Lookup(
    Session,
    lambda key, now: Session.objects.filter(session_key=key, expire_date__gt=now),
    kinds=(str, _NOW),  # PostgreSQL takes the time as it is: the marker is found
)


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        if "\x00" in self.session_key:  # no key has one, and PostgreSQL refuses to compare it
            self._session_key = None
            return None
        if connections[router.db_for_read(self.model)].vendor != "postgresql":
            return super()._get_session_from_db()
        try:
            found = _LIVE.first(self.session_key, timezone.now())
        except SuspiciousOperation as exc:  # as Django's backend reports it
            logging.getLogger(f"django.security.{type(exc).__name__}").warning(str(exc))
            found = None
        if found is None:
            self._session_key = None
        return found
