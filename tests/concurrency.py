"""Two transactions at once on PostgreSQL, for the lock tests: one holds its locks while the
other runs into them. No sleeping: the holder polls pg_locks, with a deadline, until the other
is seen waiting (or has finished)."""

import threading
import time

from django.db import connection


def hold_then_run(hold, run, *, timeout: float = 20.0) -> list[Exception]:
    """Run `hold(waiting)` in one thread; once it calls `waiting()` (from inside its own
    transaction, its locks taken), `run()` starts in another, and `waiting()` returns True when
    that one is blocked on a lock, False when it finished (or the deadline passed) without
    blocking. Returns what either raised."""
    errors: list[Exception] = []
    holding = threading.Event()

    def waiting() -> bool:
        holding.set()
        deadline = time.monotonic() + timeout
        while other.is_alive() and time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    return True
        return False

    def guarded(work, *args):
        try:
            work(*args)
        except Exception as exc:
            errors.append(exc)
        finally:
            holding.set()  # a holder that failed early must not leave the other waiting
            connection.close()

    def second():
        holding.wait(timeout=timeout)
        guarded(run)

    other = threading.Thread(target=second)
    first = threading.Thread(target=guarded, args=(hold, waiting))
    first.start()
    other.start()
    first.join(timeout=timeout + 10)
    other.join(timeout=timeout + 10)
    return errors
