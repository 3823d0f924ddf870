"""Django's PostgreSQL backend with a health check that mostly costs no round trip.

With CONN_HEALTH_CHECKS, Django asks a persistent connection `SELECT 1` at its first use in
every request, so that one the server dropped (a restart, a failover, an idle timeout) is
replaced before the request's own statements instead of failing them. That is a round trip
and a statement on every request.

Here a connection used within the last IDLE_SECONDS is asked only when its socket says
something happened: an idle connection has nothing to read unless the server closed it (it
writes why, then ends the stream) or sent something unasked; then `SELECT 1` decides, as
before. A connection idle for longer is asked as Django asks it. What this gives up: a
connection the far end forgot without a word (a failover that moves the server's address
while requests keep coming) fails the one request that uses it next, which closes it, where
Django's check would have reconnected first. Under a steady load that is at most one request
per connection; a connection that waited a second or more is checked as before."""

import select
import time

from django.db.backends.postgresql import base

IDLE = 0  # libpq's PQTRANS_IDLE, as psycopg2 and psycopg report it: no transaction open
IDLE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    used_at = 0.0  # when a cursor was last made on this connection (time.monotonic)

    def _cursor(self, name=None):
        cursor = super()._cursor(name)  # health-checked first, against the last use
        self.used_at = time.monotonic()
        return cursor

    def is_usable(self):
        raw = self.connection
        if raw is None or raw.closed:
            return False
        if time.monotonic() - self.used_at > IDLE_SECONDS:
            return super().is_usable()
        try:
            poller = select.poll()  # not select.select: any descriptor number
            poller.register(raw.fileno(), select.POLLIN)
            ready = poller.poll(0)
        except (OSError, ValueError):  # the socket is gone
            return False
        if not ready and raw.info.transaction_status == IDLE:
            return True
        return super().is_usable()
