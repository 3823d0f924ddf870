"""The audit trail: who did what, when and from where. Append-only.

Call `record(...)` from services and views; pass the request when there is one, so the actor, IP
address and browser are kept. Nothing in the app updates or deletes AuditEvent rows (on
PostgreSQL a trigger refuses it outright).
"""

import ipaddress
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import QuerySet

from .bulk import bulk_insert, new
from .models import AuditEvent


def client_ip(request) -> str | None:
    """The client's address as allauth sees it (honouring ALLAUTH_TRUSTED_PROXY_COUNT), or None
    when that is not a valid IP address: a forged header must not break the audit write.
    Without a trusted proxy or header that is REMOTE_ADDR, read here directly (allauth's way
    through its settings took 45 µs per answer)."""
    if getattr(settings, "ALLAUTH_TRUSTED_PROXY_COUNT", 0) or getattr(
        settings, "ALLAUTH_TRUSTED_CLIENT_IP_HEADER", None
    ):
        from allauth.core.internal.httpkit import get_client_ip

        address = get_client_ip(request)
    else:
        address = request.META.get("REMOTE_ADDR")
    try:
        return str(ipaddress.ip_address((address or "").strip()))
    except ValueError:
        return None


PLAIN = (str, int, float, bool, type(None))


def _plain(value):
    """A JSON-friendly form of a field value."""
    if type(value) in PLAIN:  # most values: nothing to do (an import has a million)
        return value
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple | set | QuerySet):
        return [_plain(v) for v in value]
    return value


def diff(before: dict, after: dict) -> dict:
    """{"field": [before, after]} for the fields whose values differ."""
    changes = {}
    for name in dict.fromkeys([*before, *after]):
        old, new = _plain(before.get(name)), _plain(after.get(name))
        if old != new:
            changes[name] = [old, new]
    return changes


def event(
    action: str,
    *,
    actor=None,
    request=None,
    obj=None,
    object_type: str = "",
    object_id="",
    object_repr: str = "",
    changes: dict | None = None,
    actor_email: str = "",
) -> AuditEvent:
    """An unsaved event; `record` saves one, `record_many` saves a batch."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    actor = actor if actor is not None and actor.pk else None
    audit_event = new(
        AuditEvent,
        actor_id=actor.pk if actor else None,
        actor_email=actor_email or (getattr(actor, "email", "") if actor else ""),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=object_repr[:300],
        changes=changes or {},
        ip=client_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else "",
    )  # positionally: an import builds tens of thousands
    if actor:
        audit_event.actor = actor
    return audit_event


def record(action: str, **kwargs) -> AuditEvent:
    audit_event = event(action, **kwargs)
    audit_event.save(force_insert=True)
    return audit_event


def record_many(events: Iterable[AuditEvent]) -> None:
    bulk_insert(AuditEvent, events)  # COPY on PostgreSQL: an import's thousands of events
