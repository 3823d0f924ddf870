"""readiness.cache: Django's Redis cache with one client per pool, shared by threads."""

import threading

import pytest
from django.core.cache import caches

from readiness.cache import RedisCache


@pytest.mark.services
def test_the_redis_cache_keeps_one_client_and_serves_every_thread(redis_url):
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client("any", write=False) is client  # one server: one pool

    failures = []

    def work(k: int) -> None:  # each thread: its own keys, the shared client
        try:
            for n in range(50):
                key = f"test-cache:{k}:{n}"
                cache.set(key, {"n": n}, 30)
                assert cache.get(key) == {"n": n}
                cache.add(f"test-cache:count:{k}", 0, 30)  # the first time only
                cache.incr(f"test-cache:count:{k}")
                cache.delete(key)
                assert cache.get(key) is None
        except Exception as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert [cache.get(f"test-cache:count:{k}") for k in range(8)] == [50] * 8
    assert cache._cache.get_client(write=True) is client
