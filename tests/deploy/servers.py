"""Real servers for the deployment tests: gunicorn instances, a throwaway PostgreSQL database,
and a TCP proxy in front of PostgreSQL that a test can cut and restore.

Everything listens on loopback only, and every loop here is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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
def temporary_database(prefix: str) -> Iterator[str]:
    """A database of our own on the shared server, dropped afterwards; yields its name."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
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
