"""Django's PostgreSQL backend with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django asks a persistent connection `SELECT 1` at its first use in
every request, so that one the server dropped (a restart, a failover, an idle timeout) is
replaced before the request's own statements instead of failing them. That is a round trip
and a statement on every request. Here the connection is only asked when its socket says
something happened: an idle connection has nothing to read unless the server closed it (it
writes why, then ends the stream) or sent something unasked; then `SELECT 1` decides, as
before. A path that dies without a word (no FIN) is noticed by neither check until TCP gives
up, so nothing is lost against Django's."""

import select

from django.db.backends.postgresql import base

IDLE = 0  # libpq's PQTRANS_IDLE, as psycopg2 and psycopg report it: no transaction open


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        raw = self.connection
        if raw is None or raw.closed:
            return False
        try:
            ready, _, _ = select.select([raw], [], [], 0)
        except (OSError, ValueError):  # the socket is gone
            return False
        if not ready and raw.info.transaction_status == IDLE:
            return True
        return super().is_usable()
