"""The deploy check on the cache: one cache for every worker process, or `check --deploy` fails.

The workers are counted once (idp/web_workers.py) for gunicorn (deploy/gunicorn.conf.py) and
for the check (oauth_clients/checks.py).
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from idp import web_workers
from oauth_clients import checks
from tests.deploy.servers import manage, production_env
from tests.deploy.test_manifests import DEPLOY

pytestmark = pytest.mark.once

DATABASE = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "idp_cache"}
}
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


@pytest.fixture
def workers(monkeypatch):
    """Set how many gunicorn workers the environment asks for."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)

    def set_workers(count: int) -> None:
        monkeypatch.setenv("GUNICORN_WORKERS", str(count))

    return set_workers


def check_deploy() -> str:
    out = StringIO()
    call_command("check", "--deploy", "--tag", "caches", stdout=out, stderr=out)
    return out.getvalue()


def test_without_redis_the_shipped_cache_passes_with_several_workers(tmp_path):
    # idp/settings.py as it ships, in a process of its own (this suite keeps its cache in its
    # memory: tests/conftest.py).
    env = production_env(tmp_path, GUNICORN_WORKERS="5")
    assert "REDIS_URL" not in env
    shown = manage(
        "shell", "-c", "from django.conf import settings; print(settings.CACHES)", env=env
    )
    assert "django.core.cache.backends.db.DatabaseCache" in shown
    assert "no issues" in manage("check", "--deploy", "--tag", "caches", env=env)


def test_the_database_cache_passes_with_many_workers(settings, workers):
    settings.CACHES = DATABASE
    workers(9)
    assert checks.check_shared_cache() == []
    assert "no issues" in check_deploy()


def test_a_process_local_cache_passes_with_one_worker(settings, workers):
    settings.CACHES = LOCMEM
    workers(1)
    assert checks.check_shared_cache() == []
    assert "no issues" in check_deploy()


def test_a_process_local_cache_fails_the_deploy_check_with_several_workers(settings, workers):
    settings.CACHES = LOCMEM
    workers(3)
    assert [error.id for error in checks.check_shared_cache()] == ["oauth_clients.E008"]
    with pytest.raises(SystemCheckError, match=r"oauth_clients\.E008.*3 workers"):
        check_deploy()


def test_a_process_local_cache_fails_with_gunicorns_default_worker_count(settings, monkeypatch):
    # Neither variable set: 2 per CPU plus one, so at least 3.
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings.CACHES = LOCMEM
    assert [error.id for error in checks.check_shared_cache()] == ["oauth_clients.E008"]


def test_a_cache_that_keeps_nothing_fails_even_with_one_worker(settings, workers):
    settings.CACHES = DUMMY
    workers(1)
    with pytest.raises(SystemCheckError, match=r"oauth_clients\.E009"):
        check_deploy()


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"GUNICORN_WORKERS": "4", "WEB_CONCURRENCY": "6"}, 4),
        ({"WEB_CONCURRENCY": "6"}, 6),
        ({}, 2 * web_workers.cpu_count() + 1),
    ],
)
def test_gunicorn_and_the_check_count_the_same_workers(
    monkeypatch, tmp_path, environment, expected
):
    # The config makes a metrics directory unless one is named (deploy/gunicorn.conf.py).
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("GUNICORN_WORKERS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config: dict = {}
    exec((DEPLOY / "gunicorn.conf.py").read_text(), config)  # noqa: S102 (our own config file)
    assert config["workers"] == web_workers.web_worker_count() == expected
