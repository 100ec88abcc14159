"""`manage.py db_worker`: django-tasks-db's background worker, which first starts every periodic
task that is on and not yet waiting (idp/periodic.py: the directory sync, the signing keys'
schedule), so the schedules need no cron. Same options as django-tasks-db's command; this one
wins because `idp` comes before `django_tasks_db` in INSTALLED_APPS.

The worker's start was chosen over `migrate`'s post_migrate signal (a deployment may migrate
once a release while workers restart, crash or scale at any time) and over a signal of
django-tasks (it sends none when a worker starts)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django_tasks_db.management.commands import db_worker

from idp.periodic import ensure_all

logger = logging.getLogger("idp.periodic")


class Command(db_worker.Command):
    help = "Run a database background worker, with the periodic tasks (idp/periodic.py)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            for result in ensure_all():
                logger.info("periodic task %s started", result.task.module_path)
        except DatabaseError:
            # The worker's own loop reports a database it cannot use; the schedules are
            # ensured again at its next start.
            logger.exception("periodic tasks not ensured: the database did not answer")
        super().handle(*args, **options)
