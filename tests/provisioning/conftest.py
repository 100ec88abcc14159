"""Fixtures for outbound provisioning: a real SCIM server playing the app, and a bad one.

The app's SCIM server is the python-scim project's reference server (`scim2-server`, in
requirements-dev.txt), started once per test session on 127.0.0.1 with a bearer token, and a
tenant per test (`/<tenant>/v2`), so each test starts with an empty server. Tests read back
what it stores.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Group

from accounts import services as account_services
from oauth_clients import services as client_services
from oauth_clients.models import Client
from provisioning import services
from provisioning.models import ScimTarget

SERVER_TOKEN = "scim-" + "t" * 40
SCIM_SERVER = Path(sys.executable).with_name("scim2-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ScimServer:
    """The reference SCIM server on 127.0.0.1; `base_url` is a fresh tenant of it."""

    port: int
    base_url: str = ""

    def new_tenant(self) -> str:
        self.base_url = f"http://127.0.0.1:{self.port}/t{secrets.token_hex(4)}/v2"
        return self.base_url

    def get(self, path: str, **params: str) -> Any:
        response = requests.get(
            f"{self.base_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {SERVER_TOKEN}"},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()

    def users(self) -> dict[str, dict[str, Any]]:
        """What the app holds: its Users by userName."""
        listed = self.get("/Users", count="1000")
        return {user["userName"]: user for user in listed.get("Resources", [])}

    def post_user(self, resource: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            f"{self.base_url}/Users",
            json=resource,
            headers={"Authorization": f"Bearer {SERVER_TOKEN}"},
            timeout=5,
        )
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def _scim_process() -> Iterator[int]:
    port = _free_port()
    process = subprocess.Popen(
        [
            str(SCIM_SERVER),
            "--hostname",
            "127.0.0.1",
            "--port",
            str(port),
            "--bearer-token",
            SERVER_TOKEN,
            "--dynamic-tenants",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "Serving SCIM on http://127.0.0.1:PORT/v2"
        assert "Serving SCIM" in line, line
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def scim_server(_scim_process: int) -> ScimServer:
    server = ScimServer(port=_scim_process)
    server.new_tenant()
    return server


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class BadApp:
    """An app's SCIM endpoint that answers every request the same way (500, garbage, a
    redirect, a 409) on 127.0.0.1; it records what it received."""

    status: int = 500
    body: bytes = b""
    content_type: str = "application/scim+json"
    location: str = ""
    received: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                app.received.append(
                    Seen(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=self.rfile.read(length),
                    )
                )
                self.send_response(app.status)
                if app.location:
                    self.send_header("Location", app.location)
                self.send_header("Content-Type", app.content_type)
                self.send_header("Content-Length", str(len(app.body)))
                self.end_headers()
                self.wfile.write(app.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/scim/v2"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bad_apps() -> Iterator[Any]:
    started: list[BadApp] = []

    def start(**behaviour: Any) -> BadApp:
        app = BadApp(**behaviour)
        started.append(app)
        return app

    yield start
    for app in started:
        app.close()


def scim_error(status: int, scim_type: str, detail: str) -> bytes:
    return json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(status),
            "scimType": scim_type,
            "detail": detail,
        }
    ).encode()


def register_app(admin_user: Any, *, name: str = "Wiki", private: bool = True) -> Client:
    """An OIDC app open only to the people assigned to it; `private`: it may be called on
    private addresses (its SCIM server here is on 127.0.0.1)."""
    client, _secret = client_services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name=name,
        redirect_uris=[f"https://{name.lower()}.example.com/oidc/callback"],
        scopes=["openid", "profile", "email"],
        allow_private_network=private,
    )
    client_services.set_access_policy(client=client, policy="assigned", actor=admin_user)
    return client


def assigned_group(admin_user: Any, client: Client, name: str = "wiki-users") -> Group:
    group = account_services.create_group(name=name, actor=admin_user)
    client_services.assign(client=client, group=group, actor=admin_user)
    return group


def make_target(
    admin_user: Any, client: Client, base_url: str, *, token: str = SERVER_TOKEN, **fields: Any
) -> ScimTarget:
    values = {
        "user_attributes": ["name", "displayName", "emails", "title"],
        "enterprise_extension": True,
        **fields,
    }
    return services.save_target(
        target=ScimTarget(client=client, base_url=base_url, **values),
        token=token,
        actor=admin_user,
    )


def run_worker_once() -> None:
    """One run of django-tasks-db's real worker (`manage.py db_worker --batch`): every task due
    now, including those the tasks it runs enqueue, then back here. In the test's own thread
    and connection (tests/oidc/backchannel_helpers.py `run_worker_until` says why)."""
    from django_tasks_db.management.commands.db_worker import Worker

    Worker(
        queue_names=["default"],
        interval=0.05,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    ).run()


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no DNS: names resolve to a public address (loopback literals are
    not looked up)."""
    from oauth_clients import uri_rules

    monkeypatch.setattr(uri_rules, "resolve_host", lambda host: ["93.184.216.34"])
