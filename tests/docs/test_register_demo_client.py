"""`manage.py register_demo_client` (used by `make demo` and the demo story): idempotent."""

from __future__ import annotations

import json
import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from oauth_clients.models import Client
from oauth_clients.secrets import check_client_secret

pytestmark = pytest.mark.django_db

DEMO = "http://127.0.0.1:8001"


@pytest.fixture
def dev(settings):
    settings.DEBUG = True
    return settings


def register(output, *args: str) -> str:
    out = StringIO()
    call_command("register_demo_client", "--output-dir", str(output), *args, stdout=out)
    return out.getvalue()


def test_first_run_registers_the_demo_client_and_writes_a_private_secret_file(dev, tmp_path):
    output = register(tmp_path, "--demo-url", DEMO)

    assert "Registered the demo client demo-app" in output
    client = Client.objects.get(client_id="demo-app")
    assert client.kind == Client.Kind.WEB
    assert client.redirect_uris == f"{DEMO}/accounts/oidc/company/login/callback/"
    assert client.post_logout_redirect_uris == f"{DEMO}/"
    assert client.backchannel_logout_uri == f"{DEMO}/backchannel-logout/"
    assert client.require_pkce
    assert not client.is_trusted, "the story shows the consent screen"
    written = json.loads((tmp_path / "client.json").read_text())
    assert written["issuer"] == dev.IDP_ISSUER
    assert written["client_id"] == "demo-app"
    assert check_client_secret(written["client_secret"], client.client_secret)
    assert written["client_secret"] not in output, "the secret goes to the file, not the screen"
    assert stat.S_IMODE((tmp_path / "client.json").stat().st_mode) == 0o600
    assert AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CREATED).count() == 1


def test_a_second_run_changes_nothing(dev, tmp_path):
    register(tmp_path, "--demo-url", DEMO)
    before = (tmp_path / "client.json").read_text()
    events = AuditEvent.objects.count()

    output = register(tmp_path, "--demo-url", DEMO)

    assert "credentials are current" in output
    assert (tmp_path / "client.json").read_text() == before
    assert AuditEvent.objects.count() == events
    assert Client.objects.filter(client_id="demo-app").count() == 1


def test_a_lost_secret_file_gets_a_new_secret_and_a_moved_demo_new_uris(dev, tmp_path):
    register(tmp_path, "--demo-url", DEMO)
    old = json.loads((tmp_path / "client.json").read_text())["client_secret"]
    (tmp_path / "client.json").unlink()

    register(tmp_path, "--demo-url", "http://127.0.0.1:9001")

    client = Client.objects.get(client_id="demo-app")
    new = json.loads((tmp_path / "client.json").read_text())["client_secret"]
    assert new != old
    assert check_client_secret(new, client.client_secret)
    assert not check_client_secret(old, client.client_secret)
    assert client.redirect_uris.startswith("http://127.0.0.1:9001/")
    assert AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_SECRET_ROTATED).count() == 1


def test_create_user_makes_the_demo_user_once(dev, tmp_path):
    from django.contrib.auth import get_user_model

    first = register(tmp_path, "--create-user", "demo")
    assert "Created user demo with password: " in first
    password = first.split("password: ")[1].split()[0]
    assert get_user_model().objects.get(username="demo").check_password(password)

    again = register(tmp_path, "--create-user", "demo")
    assert "exists (password unchanged)" in again
    assert get_user_model().objects.get(username="demo").check_password(password)


def test_refused_without_debug_and_for_a_bad_url(settings, tmp_path):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        register(tmp_path)
    settings.DEBUG = True
    for url in ("ftp://127.0.0.1:8001", "http://127.0.0.1:8001/app", "not a url"):
        with pytest.raises(CommandError, match="base URL"):
            register(tmp_path, "--demo-url", url)
    assert not Client.objects.filter(client_id="demo-app").exists()
