"""/readyz follows PostgreSQL going away and coming back, and the process lives through it.

A gunicorn instance talks to its own database through a TCP proxy on loopback; cutting the
proxy is the outage (the machine's PostgreSQL itself is never stopped).
"""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
import requests

from tests.deploy.servers import (
    Server,
    TcpProxy,
    collected_static,
    database_url,
    migrated_database,
    production_env,
    require_services,
)

pytestmark = [pytest.mark.scaleout]


def wait_for_status(url: str, status: int, *, within: float) -> float:
    """Seconds until `url` answers `status`; fails after `within` seconds."""
    started = time.monotonic()
    last: object = None
    while time.monotonic() - started < within:
        try:
            last = requests.get(url, timeout=5).status_code
        except requests.RequestException as exc:
            last = exc
        if last == status:
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer {status} within {within}s (last: {last!r})")


def test_readyz_turns_unready_without_postgresql_and_ready_when_it_returns(tmp_path):
    require_services(redis=False)
    proxy = TcpProxy()
    proxy.start()
    try:
        with migrated_database("idp_e_readyz") as name:
            env = production_env(
                tmp_path,
                DATABASE_URL=database_url(name, port=proxy.port),
                IDP_STATIC_ROOT=collected_static(),
            )
            server = Server("readyz", env, tmp_path).start()
            try:
                ready_url, live_url = f"{server.url}/readyz", f"{server.url}/healthz"
                wait_for_status(ready_url, HTTPStatus.OK, within=10)
                assert requests.get(ready_url, timeout=5).json()["checks"]["migrations"] == "ok"

                proxy.stop()  # PostgreSQL goes away
                went_unready = wait_for_status(ready_url, HTTPStatus.SERVICE_UNAVAILABLE, within=10)
                body = requests.get(ready_url, timeout=10).json()
                assert body["checks"]["database"] == "failed"
                # Liveness stays green: a database outage must not restart the pods.
                assert requests.get(live_url, timeout=5).status_code == HTTPStatus.OK
                assert server.alive()

                proxy.start()  # PostgreSQL is back
                came_back = wait_for_status(ready_url, HTTPStatus.OK, within=15)
                assert server.alive()
                print(f"unready after {went_unready:.2f}s, ready again after {came_back:.2f}s")
                assert went_unready < 5
            finally:
                server.stop()
            assert "Traceback" not in server.logs().split("Handling signal: term")[0]
    finally:
        proxy.close()
