"""A pytest plugin of the test suite's, for the suite on several processes (pytest-xdist;
`make test` runs one per core): each worker gets its own Redis database, as pytest-django gives
each its own test database (test_<name>_gw0, _gw1, ...). It lives in the installed package, not
in tests/, because pytest imports a plugin named with -p before anything puts the checkout on
the import path (`pytest` run directly, or from an editor, must find it too).

Tests clear the cache between them, count rate limits in it and run real Celery workers through
the broker, so two processes on one Redis database would empty each other's. Worker N of the
database D in REDIS_URL uses D + N. This runs as a plugin named in pyproject's addopts, before
pytest-django loads the settings, which read REDIS_URL once; the Celery workers and gunicorn the
tests start inherit it from the environment.
"""

import os
from urllib.parse import parse_qs, urlsplit, urlunsplit

# Redis's default number of databases; CI's suite starts at 1 (0 is the benches' and dev's).
REDIS_DATABASES = 16


def worker_redis_url(url: str, worker: str) -> str:
    """REDIS_URL for the xdist worker named `worker` ("gw0", "gw1", ...)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or "db" in parse_qs(parts.query):
        raise RuntimeError(
            f"the suite on several processes gives each its own Redis database, counted up from "
            f"the one in the path of a redis:// or rediss:// REDIS_URL; {parts.scheme}:// URLs "
            f"and a ?db= in the query are not counted up: give the database in the path "
            f"(redis://host:6379/1), or run one process (make test TEST_WORKERS=0)"
        )
    base = int(parts.path.strip("/") or 0)
    database = base + int(worker.removeprefix("gw"))
    if database >= REDIS_DATABASES:
        raise RuntimeError(
            f"{worker} would use Redis database {database}: run fewer workers (-n) or start "
            f"from a lower database than {base} in REDIS_URL"
        )
    return urlunsplit(parts._replace(path=f"/{database}"))


GIVEN_REDIS_URL = os.environ.get("REDIS_URL", "")  # as the suite was started
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "" in a suite of one process
if WORKER and GIVEN_REDIS_URL:
    os.environ["REDIS_URL"] = worker_redis_url(GIVEN_REDIS_URL, WORKER)
