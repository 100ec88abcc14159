"""The directory sync on a schedule in the background worker (directory/tasks.py on
idp/periodic.py), against the real slapd: no cron. Each run is a DirectorySync row as before
and queues the next one IDP_LDAP_SYNC_INTERVAL seconds later, a failed run too."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from directory.models import DirectorySync
from directory.tasks import scheduled_directory_sync, sync_directory_task, sync_interval
from idp.periodic import ensure_scheduled, waiting
from tests.directory.conftest import configure
from tests.periodic_helpers import assert_deferred, make_due, one_waiting, run_worker

# Transactional: the worker's close_old_connections() (tests/test_periodic.py says why).
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_start_begins_the_syncs_and_each_queues_the_next(directory, settings):
    settings.IDP_LDAP_SYNC_INTERVAL = 900
    before = timezone.now()

    call_command("db_worker", "--batch", "--no-reload", "--no-startup-delay", verbosity=0)

    run = DirectorySync.objects.get()
    assert (run.trigger, run.status) == ("schedule", DirectorySync.Status.SUCCEEDED), run.errors
    assert_deferred(one_waiting(scheduled_directory_sync), seconds=900, since=before)


def test_a_sync_that_fails_is_recorded_and_the_next_still_queued(settings, slapd):
    configure(settings, slapd, IDP_LDAP_URL="ldap://127.0.0.1:1/", IDP_LDAP_SYNC_INTERVAL=600)
    ensure_scheduled(scheduled_directory_sync, after=0)
    before = timezone.now()

    run_worker()

    run = DirectorySync.objects.get()
    assert (run.trigger, run.status) == ("schedule", DirectorySync.Status.FAILED)
    assert "could not be read" in run.errors[0]
    assert_deferred(one_waiting(scheduled_directory_sync), seconds=600, since=before)


def test_the_enqueue_command_starts_the_schedule_once(directory, settings):
    settings.IDP_LDAP_SYNC_INTERVAL = 900
    out = StringIO()
    before = timezone.now()

    call_command("ldap_sync", "--enqueue", stdout=out)
    call_command("ldap_sync", "--enqueue", stdout=StringIO())

    assert "every 900 seconds" in out.getvalue()
    # Two syncs now (one per command), one schedule starting an interval from now.
    assert waiting(sync_directory_task).count() == 2
    assert_deferred(one_waiting(scheduled_directory_sync), seconds=900, since=before)


def test_no_directory_or_an_interval_of_zero_is_no_schedule(directory, settings):
    settings.IDP_LDAP_SYNC_INTERVAL = 900
    ensure_scheduled(scheduled_directory_sync, after=0)

    settings.IDP_LDAP_SYNC_INTERVAL = 0
    make_due(scheduled_directory_sync)
    run_worker()

    assert not DirectorySync.objects.exists()  # the chain's last run synced nothing
    assert not waiting(scheduled_directory_sync).exists()
    settings.IDP_LDAP_SYNC_INTERVAL = 900
    settings.IDP_LDAP_URL = ""
    assert sync_interval() == 0
    assert ensure_scheduled(scheduled_directory_sync) is None
