"""Start-up errors instead of 500s: a production instance that could only answer errors stops at
start with one line per problem (idp/wsgi.py, idp/startup.py), and `check --deploy` says the same.

Each case starts the real WSGI module (as gunicorn imports it) or gunicorn itself in a subprocess
with a production environment (no debug; tests/deploy/servers.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
    manage,
    migrated_sqlite,
    production_env,
)

pytestmark = [pytest.mark.once]

COLLECTSTATIC_HINT = "run `manage.py collectstatic --noinput` (see README, Production)"


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A production environment's directory whose static files are collected."""
    tmp = tmp_path_factory.mktemp("collected")
    manage("collectstatic", "--noinput", env=production_env(tmp))
    return tmp


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the WSGI application the way gunicorn's workers do."""
    return subprocess.run(
        [PYTHON, "-c", "import idp.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused start wrote; it exited with gunicorn's "App failed to load"."""
    assert result.returncode == 4, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("Cannot start: ")
    return line


def test_a_production_instance_starts_once_static_files_are_collected(collected):
    result = start(production_env(collected))
    assert result.returncode == 0, result.stderr
    assert "Cannot start" not in result.stderr


def test_without_collectstatic_the_instance_stops_with_one_line(tmp_path):
    line = refusal(start(production_env(tmp_path)))
    manifest = tmp_path / "static" / "staticfiles.json"
    assert line == (
        f"Cannot start: staticfiles manifest missing at {manifest}: {COLLECTSTATIC_HINT}"
    )


def test_a_manifest_from_another_release_stops_the_instance(collected, tmp_path):
    """Code upgraded, static files kept: a file the templates name is missing from it."""
    env = production_env(collected, IDP_STATIC_ROOT=str(tmp_path / "static"))
    shutil.copytree(collected_static(), tmp_path / "static")
    manifest = tmp_path / "static" / "staticfiles.json"
    data = json.loads(manifest.read_text())
    del data["paths"]["idp/favicon.svg"]
    manifest.write_text(json.dumps(data))

    line = refusal(start(env))
    assert f"staticfiles manifest at {manifest} is from another release" in line
    assert "1 file(s), such as idp/favicon.svg" in line
    assert line.endswith(COLLECTSTATIC_HINT)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (
            {"DATABASE_URL": "nonsense://idp:hunter2@db.internal/idp"},
            "Cannot start: DATABASE_URL is not a database URL: use "
            "postgres://USER:PASSWORD@HOST:5432/NAME",
        ),
        (
            {"DATABASE_URL": "postgres://idp:hunter2@db.internal:port/idp"},
            "Cannot start: DATABASE_URL is not a database URL",
        ),
        (
            {"DATABASE_URL": "postgres://idp:hunter2@db.internal:5432"},
            "Cannot start: DATABASE_URL names no database: end it with /NAME",
        ),
        (
            {"IDP_OIDC_PRIVATE_KEY_FILE": "/nonexistent/signing.pem"},
            "Cannot start: IDP_OIDC_PRIVATE_KEY_FILE /nonexistent/signing.pem: "
            "No such file or directory",
        ),
        (
            {"IDP_OIDC_PRIVATE_KEY_FILE": ""},  # and nothing in IDP_SIGNING_KEY_DIR
            "Cannot start: No ID-token signing key is configured: Set IDP_OIDC_PRIVATE_KEY_FILE",
        ),
        (
            {"IDP_OIDC_PRIVATE_KEY": "not a key", "IDP_OIDC_PRIVATE_KEY_FILE": ""},
            "Cannot start: an ID-token signing key is not a PEM private key",
        ),
    ],
    ids=[
        "unknown-database-scheme",
        "unparsable-database-url",
        "no-database-name",
        "missing-key-file",
        "no-signing-key",
        "unreadable-signing-key",
    ],
)
def test_bad_settings_stop_the_instance_with_one_line(collected, setting, expected):
    line = refusal(start(production_env(collected, **setting)))
    assert line.startswith(expected)
    assert "hunter2" not in line  # the database password is never echoed


def test_check_deploy_reports_a_missing_manifest(collected, tmp_path):
    def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "manage.py", "check", "--deploy", "--tag", "staticfiles"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    collected_check = check(production_env(collected))
    assert collected_check.returncode == 0, collected_check.stderr

    missing = check(production_env(tmp_path))
    assert missing.returncode != 0
    assert "(idp.E001) staticfiles manifest missing at" in missing.stderr
    assert COLLECTSTATIC_HINT in missing.stderr


def test_gunicorn_serves_a_collected_instance(collected, tmp_path):
    env = production_env(collected, IDP_DATA_DIR=str(tmp_path / "data"))
    migrated_sqlite(tmp_path / "data" / "idp.sqlite3")
    server = Server("collected", env, tmp_path, workers=1).start()
    try:
        page = requests.get(f"{server.url}/accounts/login/", timeout=10)
        assert page.status_code == HTTPStatus.OK
        # Named through the manifest: hashed names, served by whitenoise.
        css = re.search(r'href="(/static/idp/idp\.[0-9a-f]{12}\.css)"', page.text)
        assert css, page.text
        assert requests.get(server.url + css[1], timeout=10).status_code == HTTPStatus.OK

        favicon = requests.get(f"{server.url}/favicon.ico", allow_redirects=False, timeout=10)
        assert favicon.status_code == HTTPStatus.FOUND
        assert re.fullmatch(r"/static/idp/favicon\.[0-9a-f]{12}\.svg", favicon.headers["Location"])
        icon = requests.get(server.url + favicon.headers["Location"], timeout=10)
        assert icon.status_code == HTTPStatus.OK
        assert icon.headers["Content-Type"] == "image/svg+xml"
    finally:
        server.stop()


def test_gunicorn_stops_at_start_instead_of_serving_500s(tmp_path):
    """The arbiter halts on the workers' exit status instead of booting them again and again."""
    env = {
        **production_env(tmp_path),
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
        "GUNICORN_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    result = subprocess.run(
        [PYTHON, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "idp.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "App failed to load" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    manifest = tmp_path / "static" / "staticfiles.json"
    assert f"Cannot start: staticfiles manifest missing at {manifest}" in result.stderr
