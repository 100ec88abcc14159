"""Which active subscribers want which event type, kept in each process's memory.

Read on every audit event (the sign-in and token paths included), so it must cost no query:
the table is read once and again at most every `IDP_WEBHOOK_SUBSCRIPTIONS_SECONDS` (30 by
default) by the first event after that, and at once after this process changed a subscriber
(`forget`). A subscriber made or changed by another process (`manage.py webhooks`, another
worker) is therefore heard of within that many seconds; until then its events are not sent.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

_lock = threading.Lock()
_state: dict[str, object] = {"loaded_at": None, "by_type": {}}


def forget() -> None:
    """Read the table again at the next event (after a change made in this process)."""
    with _lock:
        _state["loaded_at"] = None


def set_loaded(by_type: dict[str, list[int]]) -> None:
    """Take `by_type` as the table's content, read now: for a caller that knows it without a
    query (the tests, whose databases start without subscribers: tests/conftest.py)."""
    with _lock:
        _state["by_type"] = by_type
        _state["loaded_at"] = time.monotonic()


def subscriber_ids(public_type: str) -> list[int]:
    loaded_at = _state["loaded_at"]
    ttl = float(getattr(settings, "IDP_WEBHOOK_SUBSCRIPTIONS_SECONDS", 30))
    if loaded_at is None or time.monotonic() - float(loaded_at) > ttl:  # type: ignore[arg-type]
        _load()
    by_type: dict[str, list[int]] = _state["by_type"]  # type: ignore[assignment]
    return by_type.get(public_type, [])


def _load() -> None:
    from webhooks.models import Subscriber

    by_type: dict[str, list[int]] = {}
    for pk, event_types in Subscriber.objects.filter(is_active=True).values_list(
        "pk", "event_types"
    ):
        for event_type in event_types or []:
            by_type.setdefault(str(event_type), []).append(pk)
    with _lock:
        _state["by_type"] = by_type
        _state["loaded_at"] = time.monotonic()
