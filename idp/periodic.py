"""Tasks that run again and again in the background worker (`manage.py db_worker`), without cron.

Hand-written because django-tasks (0.12, the backport of Django's tasks API) and its database
queue, django-tasks-db, have no periodic tasks: a task runs once. What they do have is enough:
a task can be deferred (`Task.using(run_after=...)`, a READY row the worker leaves alone until
then). So a periodic task, when its run ends (in a `finally`: after an error too, so one bad
run never ends the schedule), enqueues its next run `interval` seconds later. Its interval is a
function read at each run: 0 (or less) turns the schedule off, and the chain then ends at its
next run, which does nothing and enqueues nothing.

Never two waiting copies: `ensure_scheduled` enqueues only when no READY row of the task is
waiting, and the check and the insert run in one transaction holding a lock two workers cannot
both hold. On PostgreSQL that is a transaction-level advisory lock keyed by the task's path:
`select_for_update` on the waiting rows would lock nothing at the very moment it matters (no
row waits, two workers both insert). On SQLite the transaction is EXCLUSIVE (django-tasks-db's
`exclusive_transaction`, what its worker uses to claim a task): the second writer waits, then
sees the first one's row. A cache lock was not used: it is not part of the database
transaction, so it cannot cover the row's commit, and tests' per-process cache proves nothing.
A RUNNING copy does not count as waiting: it enqueues its successor itself (finding one
waiting, it adds none), and a worker killed mid-run leaves a RUNNING row forever.

A chain can still break: the worker killed during a run, or the database gone when the run's
`finally` queues the next (the worker's own loop then stops on the same error). Either way the
worker starts again, and its start queues every schedule that has no run waiting.

Started without cron: `manage.py db_worker` (idp/management/commands/db_worker.py) ensures every
periodic task when the worker starts (each app's `tasks` module is imported to find them), so
a chain broken by an outage, or a schedule turned on again, resumes with the next worker start;
`manage.py ldap_sync --enqueue` ensures its chain too. On the ground floor (ARCHITECTURE.md):
it imports none of our apps; they declare their schedules with `periodic_task`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from django.db import connection
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from django_tasks import TaskResult, TaskResultStatus, task
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

logger = logging.getLogger("idp.periodic")

T = TypeVar("T")
Interval = Callable[[], float]

# Each periodic task's interval, by the task's module path (filled as the task modules load).
_INTERVALS: dict[str, Interval] = {}
_TASKS: dict[str, Task[[], Any]] = {}


def periodic_task(*, every: Interval) -> Callable[[Callable[[], T]], Task[[], T | None]]:
    """Make `func` (no arguments) a background task that runs every `every()` seconds once
    started (`ensure_scheduled`); `every()` ≤ 0 stops it at its next run."""

    def decorate(func: Callable[[], T]) -> Task[[], T | None]:
        path = f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def run() -> T | None:
            if every() <= 0:
                logger.info("periodic task %s is off: its schedule ends here", path)
                return None
            try:
                return func()
            finally:
                ensure_scheduled(_TASKS[path], after=every())

        made: Task[[], T | None] = task()(run)
        _INTERVALS[path] = every
        _TASKS[path] = made
        return made

    return decorate


def interval_of(periodic: Task[[], Any]) -> float:
    return _INTERVALS[periodic.module_path]()


def waiting(periodic: Task[[], Any]) -> Any:
    """The task's READY rows: its next run, deferred or due."""
    return DBTaskResult.objects.filter(
        task_path=periodic.module_path,
        backend_name=periodic.backend,
        status=TaskResultStatus.READY,
    )


@contextmanager
def schedule_lock(periodic: Task[[], Any]) -> Iterator[None]:
    """A transaction that holds the task's schedule lock until it commits (module docstring)."""
    with exclusive_transaction():
        if connection.vendor == "postgresql":
            key = int.from_bytes(
                hashlib.sha256(periodic.module_path.encode()).digest()[:8], "big", signed=True
            )
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        yield


def ensure_scheduled(
    periodic: Task[[], Any], *, after: float | None = None
) -> TaskResult[Any] | None:
    """Enqueue the task's next run `after` seconds from now (its interval when None) unless a
    run is already waiting or the schedule is off; returns the new run, if any."""
    interval = interval_of(periodic)
    if interval <= 0:
        return None
    if not periodic.get_backend().supports_defer:
        # A backend that runs tasks at once (tests' ImmediateBackend) has no "later".
        logger.warning("periodic task %s not scheduled: its backend cannot defer", periodic.name)
        return None
    delay = interval if after is None else after
    with schedule_lock(periodic):
        if waiting(periodic).exists():
            return None
        result = periodic.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue()
    logger.info("periodic task %s: next run in %s s", periodic.module_path, delay)
    return result


def ensure_all(*, after: float = 0) -> list[TaskResult[Any]]:
    """Every periodic task of every app (their `tasks` modules) that is on and has no run
    waiting gets one, `after` seconds from now (the worker's start: now)."""
    autodiscover_modules("tasks")
    started = []
    for periodic in list(_TASKS.values()):
        result = ensure_scheduled(periodic, after=after)
        if result is not None:
            started.append(result)
    return started
