"""Relying parties on loopback for the back-channel logout tests, and what they check.

A `Receiver` is an app's back-channel logout endpoint: an `http.server` on 127.0.0.1 with a free
port, in a thread, recording every request; it can answer with any status, slowly, with a
redirect or with an endless body. Logout tokens are verified with PyJWT through the demo app's
own §2.6 validator (`deploy/demo-app/demo/logout_tokens.py`), against our published JWKS — an
implementation independent of the jwcrypto code that signs them.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from django.conf import settings
from django.test import Client as HttpClient
from django.urls import reverse

from oauth_clients.models import Client
from tests.docs.conftest import import_demo_module
from tests.oidc.authorize_helpers import authorize_code
from tests.oidc.conftest import FORM, basic_auth, make_client

SPEC = "OpenID Connect Back-Channel Logout 1.0"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("ascii"), keep_blank_values=True)

    @property
    def logout_token(self) -> str:
        (token,) = self.form["logout_token"]
        return token


@dataclass
class Receiver:
    """An app's back-channel logout endpoint on 127.0.0.1 (see the module docstring)."""

    status: int = HTTPStatus.OK
    delay: float = 0.0
    location: str = ""
    endless_body: bool = False
    path: str = "/backchannel-logout"
    tls: ssl.SSLContext | None = None
    host_name: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._changed:
                    receiver.received.append(
                        Received(
                            method="POST",
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.monotonic(),
                        )
                    )
                    receiver._changed.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(receiver.status)
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    if receiver.endless_body:
                        self.send_header("Content-Length", str(100 * 1024 * 1024))
                        self.end_headers()
                        chunk = b"x" * 16384
                        deadline = time.monotonic() + 30
                        while time.monotonic() < deadline:
                            self.wfile.write(chunk)
                        return
                    self.send_header("Content-Length", "0")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                except OSError:
                    pass  # the IdP gave up (timeout, size cap): nothing left to answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """The URI an app registers; `host_name` may be a name our tests resolve to 127.0.0.1."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host_name}:{self.port}{self.path}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests once at least `count` have arrived (or whatever came within `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count and time.monotonic() < deadline:
                self._changed.wait(timeout=max(0.01, deadline - time.monotonic()))
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def register_app(name: str, receiver: Receiver, **fields: Any) -> Client:
    """A trusted confidential web app (code + refresh) whose back-channel URI is `receiver`."""
    slug = name.lower().replace(" ", "-")
    values: dict[str, Any] = {
        "name": name,
        "client_id": slug,
        "secret": f"{slug}-secret-" + "s" * 30,
        "redirect_uris": f"https://{slug}.example.com/callback",
        "post_logout_redirect_uris": f"https://{slug}.example.com/signed-out",
        "grant_types": [Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        "allowed_scopes": "openid profile email offline_access",
        "is_trusted": True,
        "backchannel_logout_uri": receiver.url,
        "backchannel_logout_session_required": True,
        "allow_private_network": True,  # the receivers listen on loopback
    }
    values.update(fields)
    return make_client(**values)


def sign_in_to_app(browser: HttpClient, app: Client) -> dict[str, Any]:
    """The code flow in `browser`'s IdP session, then the code exchange: the app's tokens."""
    flow = authorize_code(browser, app, scope="openid profile offline_access")
    response = HttpClient().post(
        reverse("oauth2_provider:token"),
        urlencode(flow.token_data()),
        content_type=FORM,
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.test_secret),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return dict(response.json())


def unverified_claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def verify_logout_token(token: str, app: Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a logout token that passes every §2.6 check against our JWKS."""
    jwks = HttpClient().get(reverse("oauth2_provider:jwks-info")).json()
    checks = import_demo_module("demo.logout_tokens")
    checks.verify_logout_token(
        token, issuer=settings.IDP_ISSUER, client_id=app.client_id, jwks=jwks
    )
    header = jwt.get_unverified_header(token)
    signing_key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    assert header["alg"] == signing_key.algorithm_name  # the key's own algorithm
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[header["alg"]],
        audience=app.client_id,
        issuer=settings.IDP_ISSUER,
        options={"require": ["iss", "aud", "iat", "exp", "jti", "events"]},
    )
    return header, claims


def assert_logout_token_for_session(
    received: Received, app: Client, *, id_token: str, algorithm: str = "RS256"
) -> dict[str, Any]:
    """The POST is §2.5's form and its token §2.4's, naming the ID token's user and session."""
    assert received.path == "/backchannel-logout"
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    assert list(received.form) == ["logout_token"]
    header, claims = verify_logout_token(received.logout_token, app)
    assert header["typ"] == "logout+jwt"
    assert header["alg"] == algorithm == jwt.get_unverified_header(id_token)["alg"]
    id_claims = unverified_claims(id_token)
    assert set(claims) == {"iss", "aud", "iat", "exp", "jti", "events", "sub", "sid"}
    assert claims["aud"] == app.client_id
    assert claims["sub"] == id_claims["sub"]
    assert claims["sid"] == id_claims["sid"]
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert 0 < claims["exp"] - claims["iat"] <= 120
    assert abs(claims["iat"] - time.time()) < 60
    assert "nonce" not in claims
    return claims


def run_worker_until(done: Any, *, timeout: float) -> float:
    """Run django-tasks-db's real worker until `done()` holds and no task is due (or `timeout`);
    returns the seconds it ran. Each round is `manage.py db_worker --batch` (every task that is
    due, then back here); between rounds it waits 50 ms, as `db_worker` polls its queue.

    The worker runs in the test's own thread, on the test's own database connection. It used to
    run in a thread of its own, hence with a second connection, and on SQLite the test database is
    in memory with a shared cache (`file:memorydb_default?mode=memory&cache=shared`): connections
    sharing a cache lock each other's tables, and a conflict fails at once with SQLITE_LOCKED,
    "database table is locked", without waiting (the 20 s busy timeout covers SQLITE_BUSY only).
    So whenever the test's connection held or took a lock while the worker was busy (a read by
    `done()`, a statement left open), the worker's write failed, or its `BEGIN EXCLUSIVE`, which
    django-tasks-db takes at every poll outside its own "is locked" handler, or the test's query:
    the flaky "database table is locked". Deployments share no cache (a file in WAL mode with the
    busy timeout, or PostgreSQL), so the fault was this set-up, not the code under test; one
    connection cannot lock itself out, and `done` may now read the database.
    """
    from django_tasks_db.management.commands.db_worker import Worker

    worker = Worker(
        queue_names=["default"],
        interval=0.05,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    started = time.monotonic()
    while True:
        worker.run()  # returns once no task is due (retries wait for their run_after)
        ran = time.monotonic() - started
        if done() or ran >= timeout:
            return ran
        time.sleep(0.05)
