"""The cache backend: Django's Redis cache, with one Redis client per connection pool instead
of a new one for every operation, and forget_and_add (keys deleted and one added, in one round
trip).

Django's client builds a `redis.Redis` object for each get, set or delete; building one costs
more CPU than the round trip to Redis (about 0.1 ms of a 0.28 ms delete), and answers, rate
limits and dashboards all use the cache on every request. A redis-py client is safe to share
between threads: each command takes a connection from the pool and gives it back."""

from django.core.cache.backends import redis


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:  # two threads may both build one: either serves
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient

    def forget_and_add(self, forget: list[str], key: str, value, timeout) -> bool:
        """Delete the keys `forget` and add `key` (set it unless it is set), in one round trip;
        whether `key` was added."""
        client = self._cache.get_client(write=True)
        pipe = client.pipeline(transaction=False)
        for name in forget:
            pipe.delete(self.make_and_validate_key(name))
        pipe.set(self.make_and_validate_key(key), self._cache._serializer.dumps(value),
                 ex=self.get_backend_timeout(timeout), nx=True)  # fmt: skip
        return bool(pipe.execute()[-1])


def forget_and_add(forget: list[str], key: str, value, timeout) -> bool:
    """The default cache's forget_and_add: one round trip on Redis, two elsewhere."""
    from django.core.cache import cache

    backend = getattr(cache, "forget_and_add", None)
    if backend is not None:
        return backend(forget, key, value, timeout)
    cache.delete_many(forget)
    return cache.add(key, value, timeout)
