"""`manage.py import_users FILE [--format csv|json|keycloak] [--dry-run] [--strict] [--json]`:
people from another identity provider, with their password hashes (accounts/imports.py;
docs/guides/import-users.md).

The report lists each skipped and updated row with its reason or fields (every row with
`-v 2`), then the counts. `--json` prints JSON Lines instead: one object per row, then one
`{"summary": ...}`. A skipped row does not stop the import unless `--strict`, which then writes
nothing and exits 1; `--dry-run` writes nothing and reports what a real run would do. A file
that cannot be read at all exits 1 with the reason and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.imports import (
    FORMATS,
    SKIPPED,
    UNCHANGED,
    ImportRefused,
    RowOutcome,
    import_users,
)


class Command(BaseCommand):
    help = "Import users, groups and memberships with their password hashes (no resets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="A CSV, JSON (array or JSON Lines) or Keycloak file.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="The file's format; by default from its name and first bytes.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would change; write nothing."
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="Write nothing (and exit 1) if any row would be skipped.",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON Lines.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        as_json = options["json"]
        every_row = options["verbosity"] >= 2

        def emit(outcome: RowOutcome) -> None:
            if as_json:
                self.stdout.write(json.dumps(outcome.as_dict(), ensure_ascii=False))
            elif every_row or outcome.action not in ("created", UNCHANGED):
                detail = outcome.reason or ", ".join(outcome.fields)
                self.stdout.write(
                    f"line {outcome.line}: {outcome.username}: {outcome.action}"
                    + (f" ({detail})" if detail else "")
                )

        try:
            report = import_users(
                path=path,
                file_format=options["format"],
                dry_run=options["dry_run"],
                strict=options["strict"],
                emit=emit,
            )
        except ImportRefused as error:
            raise CommandError(f"Refused: {error}. Nothing was imported.") from error
        counts = report.counts
        if as_json:
            self.stdout.write(json.dumps({"summary": report.summary()}, ensure_ascii=False))
        else:
            self.stdout.write(
                f"{counts['created']} created, {counts['updated']} updated, "
                f"{counts['unchanged']} unchanged, {counts[SKIPPED]} skipped; "
                f"{len(report.groups_created)} group(s) created."
            )
            if report.dry_run:
                self.stdout.write("Dry run: nothing was written.")
            elif not report.committed:
                self.stdout.write("Strict: rows were skipped, so nothing was written.")
        if report.strict and counts[SKIPPED] and not report.dry_run:
            raise CommandError("Refused: --strict and some rows were skipped.")
