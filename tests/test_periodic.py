"""Periodic tasks in the background worker (idp/periodic.py) on the real database queue: each run
queues the next one an interval later, after an error too; never two waiting copies, also when
two workers ensure at once; an interval of 0 ends the chain; `manage.py db_worker` starts every
schedule that is on. And the signing keys' schedule on it (oauth_clients/tasks.py); the
directory's is in tests/directory/test_scheduled_sync.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command, get_commands
from django.db import connection, connections
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from accounts.models import AuditEvent
from idp.periodic import ensure_scheduled, periodic_task, schedule_lock, waiting
from oauth_clients.models import SigningKey
from oauth_clients.tasks import rotation_interval, scheduled_key_rotation
from tests.periodic_helpers import assert_deferred, make_due, one_waiting, run_worker

# Transactional: the worker calls close_old_connections(), which closes a connection left inside
# a test's transaction on PostgreSQL (as tests/provisioning/test_acceptance.py does).
pytestmark = pytest.mark.django_db(transaction=True)

RUNS: list[str] = []


def interval_setting() -> int:
    # Off unless a test turns it on, so other suites' `db_worker` runs leave these alone.
    return int(getattr(django_settings, "TEST_PERIODIC_INTERVAL", 0))


@periodic_task(every=interval_setting)
def count_a_run() -> int:
    RUNS.append("ran")
    return len(RUNS)


@periodic_task(every=interval_setting)
def fail_a_run() -> None:
    RUNS.append("failed")
    raise RuntimeError("the job broke")


@pytest.fixture(autouse=True)
def _no_runs_yet():
    RUNS.clear()


def test_a_run_queues_the_next_one_its_interval_later(settings):
    settings.TEST_PERIODIC_INTERVAL = 600
    first = ensure_scheduled(count_a_run, after=0)
    assert first is not None

    before = timezone.now()
    run_worker()

    assert RUNS == ["ran"]
    assert DBTaskResult.objects.get(id=first.id).status == TaskResultStatus.SUCCESSFUL
    assert_deferred(one_waiting(count_a_run), seconds=600, since=before)
    # Not due yet: the worker leaves it alone; once due, it runs and queues the next.
    run_worker()
    assert RUNS == ["ran"]
    make_due(count_a_run)
    run_worker()
    assert RUNS == ["ran", "ran"]
    assert waiting(count_a_run).count() == 1


def test_a_failed_run_is_recorded_and_still_queues_the_next(settings):
    settings.TEST_PERIODIC_INTERVAL = 300
    first = ensure_scheduled(fail_a_run, after=0)
    assert first is not None

    before = timezone.now()
    run_worker()

    failed = DBTaskResult.objects.get(id=first.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.exception_class_path == "builtins.RuntimeError"
    assert "the job broke" in failed.traceback
    assert_deferred(one_waiting(fail_a_run), seconds=300, since=before)


def test_ensuring_twice_leaves_one_waiting_run(settings):
    settings.TEST_PERIODIC_INTERVAL = 600

    assert ensure_scheduled(count_a_run) is not None
    assert ensure_scheduled(count_a_run) is None
    assert ensure_scheduled(count_a_run, after=0) is None

    assert waiting(count_a_run).count() == 1
    assert waiting(fail_a_run).count() == 0  # each task its own chain


def test_a_run_finding_its_successor_already_queued_adds_none(settings):
    """`manage.py ldap_sync --enqueue` or a worker's start may queue the next run while one
    runs: the running one then adds no second."""
    settings.TEST_PERIODIC_INTERVAL = 600
    ensure_scheduled(count_a_run, after=0)
    make_due(count_a_run)
    running = one_waiting(count_a_run)
    running.status = TaskResultStatus.RUNNING  # taken by a worker, not finished
    running.save()
    ensure_scheduled(count_a_run)  # what the worker start does meanwhile
    assert waiting(count_a_run).count() == 1

    count_a_run.call()  # the running copy's end

    assert waiting(count_a_run).count() == 1


def test_an_interval_of_zero_ends_the_chain_at_its_next_run(settings):
    settings.TEST_PERIODIC_INTERVAL = 600
    ensure_scheduled(count_a_run, after=0)
    run_worker()
    assert RUNS == ["ran"]

    settings.TEST_PERIODIC_INTERVAL = 0
    make_due(count_a_run)
    run_worker()

    assert RUNS == ["ran"]  # the last run did nothing
    assert waiting(count_a_run).count() == 0
    assert ensure_scheduled(count_a_run) is None  # and nothing starts it while off


def test_a_backend_that_cannot_defer_gets_no_schedule(settings):
    settings.TEST_PERIODIC_INTERVAL = 600
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

    assert ensure_scheduled(count_a_run) is None
    assert RUNS == []


def test_two_workers_ensuring_at_once_queue_one_run(settings):
    """The check and the insert hold the schedule's lock (PostgreSQL: an advisory lock; SQLite
    serialises them with an EXCLUSIVE transaction, which the suite's in-memory shared-cache
    database cannot show across threads). Here one worker holds the lock between its check
    and its insert while the other asks: the other waits, then finds the run."""
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL phase (make test)")
    settings.TEST_PERIODIC_INTERVAL = 600
    answers = []

    def other_worker() -> None:
        try:
            answers.append(ensure_scheduled(count_a_run))
        finally:
            connections.close_all()

    with schedule_lock(count_a_run):
        assert not waiting(count_a_run).exists()
        other = threading.Thread(target=other_worker)
        other.start()
        with connection.cursor() as cursor:  # wait until the other one waits for the lock
            for _ in range(500):
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
                threading.Event().wait(0.01)
            else:
                pytest.fail("the other worker never waited for the lock")
        count_a_run.using(run_after=timezone.now() + timedelta(seconds=600)).enqueue()
    other.join(timeout=10)

    assert answers == [None]
    assert waiting(count_a_run).count() == 1


# --- The worker's start ----------------------------------------------------------------------


def test_the_project_worker_command_is_django_tasks_dbs_with_the_schedules():
    from django_tasks_db.management.commands import db_worker

    from idp.management.commands.db_worker import Command

    assert get_commands()["db_worker"] == "idp"
    assert issubclass(Command, db_worker.Command)


def test_the_worker_start_starts_every_schedule_that_is_on(settings):
    settings.TEST_PERIODIC_INTERVAL = 600
    before = timezone.now()

    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)

    assert RUNS == ["ran", "failed"] or RUNS == ["failed", "ran"]  # each ran once, at once
    assert_deferred(one_waiting(count_a_run), seconds=600, since=before)
    assert_deferred(one_waiting(fail_a_run), seconds=600, since=before)
    # The key schedule is off here (files store): nothing of it queued.
    assert not waiting(scheduled_key_rotation).exists()

    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)

    assert len(RUNS) == 2  # a restart with runs waiting adds none and runs none early
    assert waiting(count_a_run).count() == 1


# --- The signing keys' schedule (oauth_clients/tasks.py) -------------------------------------


@pytest.fixture
def db_keys(database_key_store):
    """The database key store (tests/conftest.py), its schedule looked at hourly."""
    database_key_store.IDP_SIGNING_KEY_AUTO_INTERVAL = 3600
    return database_key_store


def test_the_key_schedule_is_off_with_the_key_files(settings):
    settings.IDP_SIGNING_KEY_STORE = "files"

    assert rotation_interval() == 0
    assert ensure_scheduled(scheduled_key_rotation) is None


def test_the_worker_takes_the_key_schedules_due_steps_and_comes_back_hourly(db_keys):
    before = timezone.now()

    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)

    (key,) = SigningKey.objects.filter(state=SigningKey.State.ACTIVE)
    assert key.algorithm == "RS256"
    event = AuditEvent.objects.get(type=AuditEvent.Type.SIGNING_KEY_ROTATED)
    assert event.extra["step"] in {"create", "import"}
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATION_FAILED)
    assert_deferred(one_waiting(scheduled_key_rotation), seconds=3600, since=before)
    # The next look finds nothing due and changes nothing.
    make_due(scheduled_key_rotation)
    run_worker()
    assert SigningKey.objects.count() == 1
    assert waiting(scheduled_key_rotation).count() == 1


def test_a_key_schedule_step_that_fails_is_recorded_and_retried_next_interval(db_keys):
    db_keys.IDP_KEY_ENCRYPTION_KEY = []  # the first key cannot be stored
    first = ensure_scheduled(scheduled_key_rotation, after=0)
    assert first is not None
    before = timezone.now()

    run_worker()

    failed = DBTaskResult.objects.get(id=first.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.exception_class_path == "oauth_clients.key_rotation.KeyRotationError"
    assert "IDP_KEY_ENCRYPTION_KEY" in failed.traceback
    assert not SigningKey.objects.exists()
    # The audit log says so too, with the reason: a schedule that stopped is a security event.
    event = AuditEvent.objects.get(type=AuditEvent.Type.SIGNING_KEY_ROTATION_FAILED)
    assert event.extra["error"] == "KeyRotationError"
    assert "IDP_KEY_ENCRYPTION_KEY" in event.extra["reason"]
    assert event.extra["algorithms"] == ["RS256"]
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.SIGNING_KEY_ROTATED).exists()
    assert_deferred(one_waiting(scheduled_key_rotation), seconds=3600, since=before)
