"""The sync as background tasks (Django's tasks API, run by `manage.py db_worker`).

`scheduled_directory_sync` runs every `IDP_LDAP_SYNC_INTERVAL` seconds in the worker
(idp/periodic.py: started when the worker starts, each run enqueues the next; off while
IDP_LDAP_URL is unset or the interval is 0). `sync_directory_task` is one run now: the admin's
"Sync now" and `manage.py ldap_sync --enqueue`, which also starts the schedule if it is not
running (docs/guides/ldap.md)."""

from __future__ import annotations

from django.conf import settings
from django_tasks import task

from directory.config import is_configured
from directory.services import sync_directory
from idp.periodic import ensure_scheduled, periodic_task


def sync_interval() -> int:
    """Seconds between scheduled syncs; 0 (off) without a directory."""
    return int(settings.IDP_LDAP_SYNC_INTERVAL) if is_configured() else 0


@task()
def sync_directory_task(trigger: str = "worker") -> int:
    return sync_directory(trigger=trigger).pk


@periodic_task(every=sync_interval)
def scheduled_directory_sync() -> int:
    # A directory that cannot be read is a FAILED DirectorySync row, not an exception
    # (directory/services.py); anything else fails the task, and the next run is still queued.
    return sync_directory(trigger="schedule").pk


def enqueue_sync(*, trigger: str) -> None:
    sync_directory_task.enqueue(trigger)


def ensure_sync_schedule() -> bool:
    """Start the schedule (its first run one interval from now) unless it runs or is off."""
    return ensure_scheduled(scheduled_directory_sync) is not None
