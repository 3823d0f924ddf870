"""The real services: a Celery worker over Redis runs a task against the database; the cache.

These need REDIS_URL (and PostgreSQL for the worker's database). With CI=true a missing service
fails the test instead of skipping it.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from readiness.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def worker_env() -> dict[str, str]:
    """The worker talks to the test database, which pytest-django created under a test_ name."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    return env


@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_task_through_redis(redis_url, postgres):
    queue = f"test-{uuid.uuid4().hex[:8]}"  # our own queue: other workers on this Redis stay out
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "readiness", "worker", "--pool=solo",
         "--concurrency=1", "-Q", queue, "--without-heartbeat", "--without-gossip",
         "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        # Through the broker to the worker (conftest restores eager mode afterwards).
        celery_app.conf.task_always_eager = False
        result = celery_app.send_task("readiness.tasks.health_check", queue=queue)
        value = result.get(timeout=60)  # polls the result backend with a deadline
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert value == {"worker": "ok", "database": True, "vendor": "postgresql"}, output


def test_cache_is_redis_when_configured(redis_url):
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    key = f"test-{uuid.uuid4().hex}"
    cache.set(key, {"officers": 26}, timeout=30)
    assert cache.get(key) == {"officers": 26}
    cache.delete(key)
