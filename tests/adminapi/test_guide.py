"""docs/snippets/admin_api.sh, the admin API guide's curl script, run against a live server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from accounts.models import AuditEvent
from oauth_clients.models import Client
from tests.adminapi.conftest import register_service

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "snippets" / "admin_api.sh"


def test_the_guides_curl_script_runs_as_written(live_server):
    service, secret = register_service("admin:users", "admin:clients", "admin:audit")
    env = {
        "PATH": os.environ["PATH"],
        "IDP": live_server.url,
        "CLIENT_ID": service.client_id,
        "CLIENT_SECRET": secret,
    }
    run = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:5] == ["wiki", "grace", "['grace']", "assigned", "['Engineering']"]
    assert lines[-7:] == [
        "client.secret_rotated",
        "client.changed",
        "client.changed",
        "group.member_added",
        "group.created",
        "user.created",
        "client.created",
    ]
    assert Client.objects.get(client_id="wiki").previous_secret_expires_at is not None
    assert AuditEvent.objects.filter(actor_repr=f"service:{service.client_id}").count() == 7
