"""The schedules in real worker processes (`manage.py db_worker`, as Compose and Kubernetes run
it, idp/periodic.py): with no cron and no command, two workers on one database take the signing
keys' schedule every IDP_SIGNING_KEY_AUTO_INTERVAL seconds between them, never with two runs
waiting. (The lock that keeps two workers from both queueing a run is proven deterministically
in tests/test_periodic.py on PostgreSQL; this is the whole thing end to end on SQLite.)"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.deploy import servers

pytestmark = [pytest.mark.once]

TASK = "oauth_clients.tasks.scheduled_key_rotation"


def rows(database: Path) -> dict[str, int]:
    with sqlite3.connect(database, timeout=20) as db:
        found = db.execute(
            "SELECT status, count(*) FROM django_tasks_database_dbtaskresult "
            "WHERE task_path = ? GROUP BY status",
            [TASK],
        ).fetchall()
    return dict(found)


def test_two_workers_run_the_key_schedule_once_per_interval_without_cron(tmp_path):
    database = servers.migrated_sqlite(tmp_path / "idp.sqlite3")
    env = servers.production_env(
        tmp_path,
        DATABASE_URL=f"sqlite:///{database}",
        IDP_SIGNING_KEY_STORE="database",
        IDP_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        IDP_SIGNING_KEY_AUTO_INTERVAL="1",
    )
    del env["IDP_OIDC_PRIVATE_KEY_FILE"]  # a key in the environment would win over the database
    command = [servers.PYTHON, "manage.py", "db_worker", "--no-reload", "--interval", "0.1"]
    workers = [
        subprocess.Popen(
            [*command, "--worker-id", f"w{n}"],
            cwd=servers.ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in (1, 2)
    ]
    try:
        started = time.monotonic()
        seen: list[dict[str, int]] = []
        while time.monotonic() - started < 30:
            now = rows(database)
            seen.append(now)
            if now.get("SUCCESSFUL", 0) >= 3:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=20)

    assert seen[-1].get("SUCCESSFUL", 0) >= 3, seen[-1]
    assert all(sample.get("READY", 0) <= 1 for sample in seen)  # never two waiting
    assert "FAILED" not in seen[-1]
    # Once per interval between the two workers, not once each: the first at the workers'
    # start, then one a second.
    assert seen[-1]["SUCCESSFUL"] <= elapsed / 1 + 2
    with sqlite3.connect(database) as db:
        states = db.execute("SELECT state FROM oauth_clients_signingkey").fetchall()
    assert states == [("active",)]  # the first run created the first key; the rest: nothing due
