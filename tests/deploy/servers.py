"""Real servers for the deployment tests: gunicorn instances, a throwaway PostgreSQL database,
and a TCP proxy in front of PostgreSQL that a test can cut and restore.

Everything listens on loopback only, and every loop here is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_URL = os.environ.get(
    "IDP_TEST_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def redis_db(purpose: str) -> int:
    """A Redis database number of this test process's own for `purpose`: the suite runs in up
    to three processes (pytest-xdist's gw0..gw2), and tests that empty their database must not
    empty another process's. `redis` tests 15 down to 13, the scale-out cluster 9 down to 7;
    10 and 12 are the benchmarks' (bench/run.py, bench/ab.py), 11 bench/profile_views.py's, 0
    people's own."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    assert worker < 3, "more than three test processes would share Redis databases"
    return {"redis": 15, "scaleout": 9}[purpose] - worker


def require_services(*, redis: bool) -> None:
    """Fail (never skip) when the services these tests exist to exercise do not answer."""
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        raise AssertionError(f"PostgreSQL does not answer at {PG_ADMIN_URL}: {exc}") from exc
    if redis:
        try:
            with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3) as sock:
                sock.sendall(b"PING\r\n")
                assert sock.recv(16).startswith(b"+PONG"), "Redis did not answer PING"
        except OSError as exc:
            raise AssertionError(f"Redis does not answer on {REDIS_HOST}:{REDIS_PORT}") from exc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def temporary_database(prefix: str, *, template: str = "") -> Iterator[str]:
    """A database of our own on the shared server (empty, or a copy of `template`), dropped
    afterwards; yields its name."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def database_url(name: str, *, port: int = PG_PORT) -> str:
    return f"postgres://postgres@{PG_HOST}:{port}/{name}"


def manage(*args: str, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def production_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """Environment of a production-like instance (no debug) on a loopback http issuer."""
    key_file = tmp / "signing.pem"
    if not key_file.exists():
        from oauth_clients.keys import generate_rsa_private_key_pem

        key_file.write_text(generate_rsa_private_key_pem())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "DJANGO_SETTINGS_MODULE": "idp.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "scale-out-test-" + "k" * 50,
        "IDP_ISSUER": "http://127.0.0.1:8000",
        "IDP_DATA_DIR": str(tmp / "data"),
        "IDP_STATIC_ROOT": str(tmp / "static"),
        "IDP_OIDC_PRIVATE_KEY_FILE": str(key_file),
        "IDP_SIGNING_KEY_DIR": str(tmp / "no-key-dir"),
        "IDP_LOG_FORMAT": "json",
    }
    env.update(overrides)
    return env


# --- A migrated database and collected static files, made once -------------------------------
# `manage.py migrate` from nothing takes 10-15 s here and collectstatic about 5 s, each in a new
# process. Most tests that start an instance need a migrated database and collected files, not
# to watch them being made (tests/deploy/test_startup.py and test_manifests.py do that, and the
# readiness check proves an instance's migrations are applied): each is made once for the
# content it comes from (the migrations, static/ and the pinned requirements) under var/, and
# copied or shared. A change to any of those makes a new one. Copies of the database share one
# Installation row (idp/migrations/0001_initial.py); no test compares two instances' identities.
MADE_ONCE = ROOT / "var" / "test-made-once"
MIGRATIONS = ("*/migrations/*.py", "requirements.txt")
STATIC = ("static/**/*", "requirements.txt", "idp/settings.py")


def _digest(patterns: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _made_once(
    name: str, make: Callable[[Path], None], *, still_there: Callable[[], bool] = lambda: True
) -> Path:
    """The directory `name` under MADE_ONCE, made by `make` the first time (or again when
    `still_there` says what it stands for is gone); a file lock makes the suite's processes
    (pytest-xdist) wait for one another instead of making it twice."""
    MADE_ONCE.mkdir(parents=True, exist_ok=True)
    target = MADE_ONCE / name
    with (MADE_ONCE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and not still_there():
            shutil.rmtree(target)
        if not target.exists():
            partial = MADE_ONCE / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            make(partial)
            partial.rename(target)
    return target


def _migrate_sqlite(directory: Path) -> None:
    url = f"sqlite:///{directory / 'idp.sqlite3'}"
    manage("migrate", "--noinput", env=production_env(directory, DATABASE_URL=url))


def migrated_sqlite(path: Path) -> Path:
    """A migrated SQLite database at `path`, copied with SQLite's backup API (which reads what
    the write-ahead log still holds); returns `path`."""
    template = _made_once(f"sqlite-{_digest(MIGRATIONS)}", _migrate_sqlite) / "idp.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    source, copy = sqlite3.connect(template), sqlite3.connect(path)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return path


def collected_static() -> str:
    """A directory of collected static files (read-only: instances only serve from it)."""

    def collect(directory: Path) -> None:
        manage(
            "collectstatic",
            "--noinput",
            env=production_env(directory, IDP_STATIC_ROOT=str(directory / "static")),
        )

    return str(_made_once(f"static-{_digest(STATIC)}", collect) / "static")


def _template_databases() -> list[str]:
    with psycopg.connect(PG_ADMIN_URL) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'idp\\_made\\_once\\_%'"
        ).fetchall()
    return [row[0] for row in rows]


def _migrate_postgresql(name: str) -> Callable[[Path], None]:
    def make(directory: Path) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for (
                stale
            ) in _template_databases():  # earlier migrations' templates, and a half-made one
                conn.execute(f'DROP DATABASE IF EXISTS "{stale}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = database_url(name)
        manage("migrate", "--noinput", env=production_env(directory, DATABASE_URL=url))

    return make


@contextlib.contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A migrated PostgreSQL database of our own, a copy of a template database made once
    (CREATE DATABASE ... TEMPLATE), dropped afterwards; yields its name."""
    template = f"idp_made_once_{_digest(MIGRATIONS)}"
    _made_once(
        f"postgresql-{template}",
        _migrate_postgresql(template),
        still_there=lambda: template in _template_databases(),
    )
    with temporary_database(prefix, template=template) as name:
        yield name


class Server:
    """One gunicorn instance of the IdP (deploy/gunicorn.conf.py) on a loopback port."""

    def __init__(self, name: str, env: dict[str, str], tmp: Path, *, workers: int = 2) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{name}.log"
        self.env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prometheus-{name}"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "idp.wsgi"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.logs()[-3000:]}"
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=2).ok:
                    return self
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not start:\n{self.logs()[-3000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        """Graceful stop (SIGTERM, as Kubernetes and Compose do); returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class TcpProxy:
    """A loopback TCP relay in front of PostgreSQL that can be cut (all connections dropped,
    new ones refused) and restored on the same port, to play "the database went away"."""

    def __init__(self, target_port: int = PG_PORT) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _run(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(PG_HOST, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def start(self) -> None:
        self._run(self._start())

    def stop(self) -> None:
        self._run(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
