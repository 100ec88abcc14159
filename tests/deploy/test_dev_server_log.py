"""Each request is logged once, by idp.request (idp/request_log.py): on the dev server
(`manage.py runserver`, what `make run` starts) and under gunicorn (deploy/gunicorn.conf.py).

Both servers run in subprocesses on loopback over one migrated SQLite database and serve one
request at a time, so a request's every log line is written before the next request's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
import requests

from tests.deploy.servers import (
    PYTHON,
    ROOT,
    Server,
    collected_static,
    free_port,
    migrated_sqlite,
    production_env,
)

pytestmark = [pytest.mark.once]


class LoggedServer:
    """A server whose stdout and stderr go to one file, and the lines a request left there."""

    def __init__(self, url: str, log_path: Path) -> None:
        self.url = url
        self.log_path = log_path
        self.sentinels = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines_after(self, path: str, response: requests.Response) -> list[str]:
        """The log lines naming `path`, once the server has served the next request (the
        request under test is then logged in full)."""
        assert response.status_code != HTTPStatus.INTERNAL_SERVER_ERROR, self.log()[-3000:]
        self.sentinels += 1
        sentinel = f"/sentinel-{self.sentinels}/"
        requests.get(self.url + sentinel, timeout=10)
        deadline = time.monotonic() + 10
        while sentinel not in self.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sentinel in self.log(), self.log()[-3000:]
        return [line for line in self.log().splitlines() if path in line]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("db")
    return f"sqlite:///{migrated_sqlite(tmp / 'idp.sqlite3')}"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[LoggedServer]:
    """`manage.py runserver` as `make run` starts it (debug, text logs), one request at a time."""
    tmp = tmp_path_factory.mktemp("dev")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "IDP_DATA_DIR": str(tmp / "data"),
        "DATABASE_URL": database,
        "PYTHONUNBUFFERED": "1",
    }
    server = LoggedServer(f"http://127.0.0.1:{port}", tmp / "runserver.log")
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                PYTHON,
                "manage.py",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
                "--nothreading",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, server.log()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{server.url}/healthz", timeout=2).ok:
                    break
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def production_server(
    tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[LoggedServer]:
    """gunicorn with the image's configuration: one worker, one thread."""
    tmp = tmp_path_factory.mktemp("production")
    env = production_env(
        tmp, DATABASE_URL=database, GUNICORN_THREADS="1", IDP_STATIC_ROOT=collected_static()
    )
    server = Server("production", env, tmp, workers=1).start()
    try:
        yield LoggedServer(server.url, server.log_path)
    finally:
        server.stop()


def test_dev_server_logs_a_page_once(dev_server):
    response = requests.get(f"{dev_server.url}/accounts/login/", timeout=10)
    assert response.status_code == HTTPStatus.OK
    (line,) = dev_server.lines_after("/accounts/login/", response)
    assert '"logger": "idp.request"' in line
    assert '"status": 200' in line


def test_dev_server_logs_a_missing_page_once(dev_server):
    response = requests.get(f"{dev_server.url}/no-such-page/", timeout=10)
    assert response.status_code == HTTPStatus.NOT_FOUND
    (line,) = dev_server.lines_after("/no-such-page/", response)
    assert '"status": 404' in line


def test_dev_server_answers_favicon_ico_with_the_house_icon(dev_server):
    response = requests.get(f"{dev_server.url}/favicon.ico", timeout=10)
    assert response.status_code == HTTPStatus.OK
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert [redirect.status_code for redirect in response.history] == [HTTPStatus.FOUND]
    assert response.url == f"{dev_server.url}/static/idp/favicon.svg"
    assert len(dev_server.lines_after("/favicon.ico", response)) == 1


def test_production_server_logs_a_page_once(production_server):
    response = requests.get(f"{production_server.url}/accounts/login/", timeout=10)
    assert response.status_code == HTTPStatus.OK
    (line,) = production_server.lines_after("/accounts/login/", response)
    assert '"logger": "idp.request"' in line


def test_production_server_logs_a_missing_page_once(production_server):
    response = requests.get(f"{production_server.url}/no-such-page/", timeout=10)
    assert response.status_code == HTTPStatus.NOT_FOUND
    (line,) = production_server.lines_after("/no-such-page/", response)
    assert '"status": 404' in line
