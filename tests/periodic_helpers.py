"""Running the real worker in a test and reading a periodic task's waiting run
(tests/test_periodic.py, tests/directory/test_scheduled_sync.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from idp.periodic import waiting
from tests.provisioning.conftest import run_worker_once

# django-tasks-db's real worker, once through every task due now (`db_worker --batch`).
run_worker = run_worker_once


def make_due(task: Any) -> None:
    """The waiting run's time has come (instead of sleeping through the interval)."""
    waiting(task).update(run_after=timezone.now() - timedelta(seconds=1))


def one_waiting(task: Any) -> DBTaskResult:
    (row,) = waiting(task)
    return row


def assert_deferred(row: DBTaskResult, *, seconds: int, since: datetime) -> None:
    assert since + timedelta(seconds=seconds) <= row.run_after
    assert row.run_after <= timezone.now() + timedelta(seconds=seconds)
