"""The audit feed → provisioning: which written audit rows may change what an app must hold.

accounts and the registry may not import this app (it sits above them), so it listens to the
ground floor's `event_published` (accounts/audit.py), sent for every audit row. The
receiver only notes who or which app changed; after the transaction commits, one call queues
the work (provisioning/services.py), decided against what the transaction left. A rolled-back
change queues a check that then finds nothing to send. A deletion is the exception: its
departures are queued at once, in the deleting transaction.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from accounts.audit import event_published
from accounts.models import AuditEvent
from provisioning import services
from provisioning.delivery import queue_departures

logger = logging.getLogger(__name__)

Type = AuditEvent.Type

# A person's state at the apps they may use may have changed: joiner, mover, leaver.
PERSON_EVENTS = frozenset(
    {
        Type.USER_CREATED,
        Type.USER_CHANGED,
        Type.USER_DEACTIVATED,
        Type.USER_ACTIVATED,
        Type.GROUP_MEMBER_ADDED,
        Type.GROUP_MEMBER_REMOVED,
    }
)
# Who may use one app, or their roles, may have changed (assignments, policy, roles).
APP_EVENTS = frozenset({Type.CLIENT_CHANGED, Type.CLIENT_ENABLED})
# Every app assigned to a group may be affected (a group moved or deleted).
EVERY_APP_EVENTS = frozenset({Type.GROUP_PARENT_CHANGED, Type.GROUP_DELETED})


@dataclass
class _Pending:
    users: set[int] = field(default_factory=set)
    clients: set[int] = field(default_factory=set)
    every_app: bool = False


_local = threading.local()


def _pending() -> _Pending:
    pending = getattr(_local, "pending", None)
    if pending is None:
        pending = _local.pending = _Pending()
    return pending


def on_audit_event(sender: Any, event: AuditEvent, **kwargs: Any) -> None:
    kind = event.type
    if kind == Type.USER_DELETED and event.subject is not None:
        # Now, inside the deletion (accounts/services.py `delete_user`): afterwards the links
        # to the person's accounts at the apps are gone with them.
        queue_departures(user=event.subject, reason="user_deleted")
        return
    if kind in PERSON_EVENTS and event.subject_id is not None:
        _pending().users.add(event.subject_id)
    elif kind in APP_EVENTS and event.client_id is not None:
        _pending().clients.add(event.client_id)
    elif kind in EVERY_APP_EVENTS:
        _pending().every_app = True
    else:
        return
    # Registered per event; the first callback after commit takes everything noted.
    transaction.on_commit(flush, robust=True)


def flush() -> None:
    """After commit: queue what the noted changes need."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        return
    _local.pending = None
    if pending.every_app or pending.clients:
        services.queue_app_syncs(
            client_ids=None if pending.every_app else pending.clients, reason="access_changed"
        )
    if pending.users:
        services.queue_user_changes(user_ids=pending.users, reason="user_changed")


def connect() -> None:
    event_published.connect(
        on_audit_event, sender=AuditEvent, dispatch_uid="provisioning.receivers"
    )
