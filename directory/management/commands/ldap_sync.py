"""`manage.py ldap_sync`: mirror the company directory's people and groups now (or, with
--enqueue, hand the run to the background worker, and start the worker's schedule of syncs if it
is not running: directory/tasks.py). Schedules: docs/guides/ldap.md."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from directory.config import is_configured
from directory.models import DirectorySync
from directory.services import sync_directory
from directory.tasks import enqueue_sync, ensure_sync_schedule, sync_interval


class Command(BaseCommand):
    help = "Create, update and deactivate users and groups from the company directory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Queue the sync for the background worker instead of running it here.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not is_configured():
            raise CommandError("No directory is configured: set IDP_LDAP_URL.")
        if options["enqueue"]:
            enqueue_sync(trigger="command")
            self.stdout.write("Directory sync queued for the background worker.")
            if ensure_sync_schedule():
                self.stdout.write(
                    f"Scheduled syncs started: every {sync_interval()} seconds "
                    "(IDP_LDAP_SYNC_INTERVAL)."
                )
            return
        run = sync_directory(trigger="command")
        self.stdout.write(
            f"Directory sync {run.status}: {run.users_seen} people in the directory, "
            f"{run.users_created} created, {run.users_updated} updated, "
            f"{run.users_deactivated} deactivated, {run.users_activated} activated again; "
            f"groups {run.groups_created} created, {run.groups_updated} updated; "
            f"memberships {run.memberships_added} added, {run.memberships_removed} removed."
        )
        for error in run.errors:
            self.stderr.write(f"  {error}")
        if run.status == DirectorySync.Status.FAILED:
            raise CommandError("The directory sync failed.")
