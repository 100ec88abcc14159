"""A management command's stdout is its answer; its log lines go to stderr.

`manage.py groups … --json` and `clients … --json` are scripted (`| jq`): the audit event each
change writes is logged as a JSON line too, and on stdout it would come before the answer.
The servers (runserver, db_worker, gunicorn) keep logging on stdout (deploy/README.md).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy import servers

pytestmark = [pytest.mark.once]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("command-output")
    database = servers.migrated_sqlite(Path(tmp) / "idp.sqlite3")
    return servers.production_env(tmp, DATABASE_URL=f"sqlite:///{database}")


def test_a_commands_json_answer_is_alone_on_stdout_and_its_audit_line_on_stderr(env):
    result = subprocess.run(
        [servers.PYTHON, "manage.py", "groups", "create", "engineering", "--json"],
        cwd=servers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "engineering"
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [line["event"] for line in logged if line.get("logger") == "idp.audit"] == [
        "group.created"
    ]

    refused = subprocess.run(
        [servers.PYTHON, "manage.py", "groups", "create", "engineering", "--json"],
        cwd=servers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert "engineering" in refused.stderr
