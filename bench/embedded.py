"""Django on a throwaway database, for the bench scripts that time one command or listing in
process (bench/import_users.py, bench/scim_listing.py): a migrated SQLite file in a new
temporary directory, or the PostgreSQL database `database_url` names, migrated and flushed."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_on_throwaway_database(*, prefix: str, database_url: str = "") -> Path:
    """Set Django up on it; returns the temporary working directory."""
    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["IDP_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if database_url:
        call_command("flush", "--noinput", verbosity=0)
    return workdir
