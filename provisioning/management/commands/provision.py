"""`manage.py provision sync APP [--dry-run]`: reconcile an app's SCIM target, or show the plan."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from provisioning import services
from provisioning.models import ScimTarget
from provisioning.planning import plan_target, target_is_live


class Command(BaseCommand):
    help = "Outbound SCIM provisioning: reconcile an app (`sync APP`), or --dry-run to only show."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sync = sub.add_parser("sync", help="Queue what the app's SCIM server needs.")
        sync.add_argument("app", help="The app's client_id or name.")
        sync.add_argument(
            "--dry-run", action="store_true", help="Show what would be sent; send nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        app = options["app"]
        target = (
            ScimTarget.objects.select_related("client")
            .filter(Q(client__client_id=app) | Q(client__name=app))
            .first()
        )
        if target is None:
            raise CommandError(f"no app {app!r} with a SCIM target")
        if not target_is_live(target):
            raise CommandError(f"the SCIM target of {app!r} or the app itself is disabled")
        if options["dry_run"]:
            changes = plan_target(target=target)
            for change in changes:
                remote = change.provisioned.remote_id if change.provisioned else "-"
                self.stdout.write(f"{change.action}\t{change.user.get_username()}\t{remote}")
            self.stdout.write(f"{len(changes)} change(s) would be sent; nothing was sent.")
            return
        queued = services.sync_target(target=target, reason="sync_command")
        self.stdout.write(f"{len(queued)} delivery(ies) queued for the worker.")
