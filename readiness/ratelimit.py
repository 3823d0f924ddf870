"""A fixed-window counter per client address in the cache (shared by every process in
production, where the cache is Redis). For abuse the sign-in limits of allauth do not cover."""

import time

from django.core.cache import cache

from .audit import client_ip

_now = time.time  # the clock the windows are cut from (tests hold it still)


def _key(request, scope: str, window: int) -> str:
    return f"ratelimit:{scope}:{client_ip(request) or 'unknown'}:{int(_now() // window)}"


def exceeded(request, scope: str, *, limit: int, window: int) -> bool:
    """Whether this client already used up `limit` hits of `scope` in the current window."""
    return (cache.get(_key(request, scope, window)) or 0) >= limit


def hit(request, scope: str, *, window: int) -> int:
    """Count one hit; returns the count in the current window."""
    key = _key(request, scope, window)
    if cache.add(key, 1, timeout=window + 1):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 1)
        return 1
