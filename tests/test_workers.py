"""readiness/pytest_workers.py: each test process of `make test` has its own Redis database."""

import os

import pytest
from django.conf import settings

from readiness.pytest_workers import GIVEN_REDIS_URL, WORKER, worker_redis_url


def test_each_worker_counts_up_from_the_database_in_the_url():
    url = "redis://:secret@127.0.0.1:6379/1"
    assert worker_redis_url(url, "gw0") == "redis://:secret@127.0.0.1:6379/1"
    assert worker_redis_url(url, "gw3") == "redis://:secret@127.0.0.1:6379/4"
    assert worker_redis_url("redis://cache:6379", "gw1") == "redis://cache:6379/1"


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379?db=3", "unix:///run/redis.sock?db=1"])
def test_a_database_it_cannot_count_up_from_is_refused_with_what_to_give(url):
    with pytest.raises(RuntimeError, match="give the database in the path"):
        worker_redis_url(url, "gw1")


def test_past_redis_databases_it_says_what_to_change():
    with pytest.raises(RuntimeError, match="run fewer workers"):
        worker_redis_url("redis://127.0.0.1:6379/14", "gw2")


def test_this_process_uses_its_own_database():
    expected = (
        worker_redis_url(GIVEN_REDIS_URL, WORKER) if WORKER and GIVEN_REDIS_URL else GIVEN_REDIS_URL
    )
    assert settings.REDIS_URL == expected == os.environ.get("REDIS_URL", "")
