"""The sync as a background task (Django's tasks API, run by `manage.py db_worker`). The
database queue has no schedule of its own: a cron job or a Kubernetes CronJob runs
`manage.py ldap_sync` (or `ldap_sync --enqueue`, which hands it to the worker); the admin's
"Sync now" enqueues it too (deploy/README.md, docs/guides/ldap.md)."""

from __future__ import annotations

from django_tasks import task

from directory.services import sync_directory


@task()
def sync_directory_task(trigger: str = "worker") -> int:
    return sync_directory(trigger=trigger).pk


def enqueue_sync(*, trigger: str) -> None:
    sync_directory_task.enqueue(trigger)
