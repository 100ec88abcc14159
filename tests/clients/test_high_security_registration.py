"""Registering and switching the high-security profile (FAPI 2.0 Security Profile) everywhere a
client setting lives: the register-an-app wizard (with require DPoP and require PAR beside it),
the admin change form, `manage.py clients create --high-security`, show and the registry's
export and import (leaving the profile is a weakening), the admin API
(tests/adminapi/test_clients.py); each refusal of an app that cannot take it (public, or
without keys) as that surface's error; every change audited."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.models import AuditEvent
from oauth_clients import services
from oauth_clients.models import Client
from tests.clients.test_admin import REGISTER_URL, change_form_data, register, register_form, url
from tests.clients.test_cli import run, run_json
from tests.oidc.conftest import assert_dropping_is_a_weakening
from tests.oidc.pkjwt_helpers import ClientKey, jwks_of

KEYS = jwks_of(ClientKey.ec(kid="k1"))
WEB = {"redirect_uris": ["https://bank.example.com/cb"]}


def test_the_service_registers_a_keyed_web_app_with_the_profile_and_audits_it(admin_user):
    client, secret = services.register_client(
        actor=admin_user, kind=Client.Kind.WEB, name="Bank", jwks=KEYS, high_security=True, **WEB
    )
    assert secret == ""
    assert client.high_security
    assert client.must_push_requests
    assert client.must_use_dpop
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED, client=client)
    assert event.extra["high_security"] is True


@pytest.mark.parametrize(
    ("kind", "extra", "message"),
    [
        (Client.Kind.SPA, {"jwks": None}, "public app"),
        (Client.Kind.NATIVE, {"jwks": None}, "public app"),
        (Client.Kind.WEB, {"jwks": None}, "public keys"),
    ],
)
def test_the_service_refuses_the_profile_without_keys_or_for_a_public_app(
    admin_user, kind, extra, message
):
    with pytest.raises(ValidationError) as refused:
        services.register_client(
            actor=admin_user, kind=kind, name="Weak", high_security=True, **WEB, **extra
        )
    assert message in " ".join(refused.value.message_dict["high_security"])
    assert not Client.objects.exists()


def test_switching_it_on_needs_keys_and_removing_them_later_is_refused(admin_user):
    client, _secret = services.register_client(
        actor=admin_user, kind=Client.Kind.WEB, name="Wiki", **WEB
    )
    with pytest.raises(ValidationError) as refused:
        services.update_client(client=client, actor=admin_user, changes={"high_security": True})
    assert "high_security" in refused.value.message_dict
    services.update_client(
        client=client, actor=admin_user, changes={"jwks": KEYS, "high_security": True}
    )
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("pk")
    assert event.extra["fields"] == ["high_security", "jwks"]
    with pytest.raises(ValidationError) as refused:
        services.update_client(client=client, actor=admin_user, changes={"jwks": None})
    assert "high_security" in refused.value.message_dict
    services.update_client(client=client, actor=admin_user, changes={"high_security": False})
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("pk")
    assert event.extra["weakened"] == ["leaves the high-security profile (FAPI 2.0)"]


def test_the_profile_travels_in_the_registry_and_leaving_it_is_a_weakening(admin_user):
    bank, _secret = services.register_client(
        actor=admin_user, kind=Client.Kind.WEB, name="Bank", jwks=KEYS, high_security=True, **WEB
    )
    entry = assert_dropping_is_a_weakening(
        bank, "high_security", "leaves the high-security profile", actor=admin_user
    )

    # A new app from a file with the profile and no keys: refused as a whole.
    newcomer = {**entry, "client_id": "newcomer", "high_security": True, "jwks": None}
    with pytest.raises(services.RegistryImportError, match="high_security"):
        services.import_registry(document={"version": 1, "clients": [newcomer]}, actor=None)
    assert not Client.objects.filter(client_id="newcomer").exists()


def test_the_cli_creates_shows_and_refuses_the_profile(admin_user, tmp_path):
    keys_file = tmp_path / "jwks.json"
    keys_file.write_text(json.dumps(KEYS))
    args = ["create", "--kind=web", "--redirect-uri=https://bank.example.com/cb"]
    data = run_json(*args, "--name=Bank", f"--jwks={keys_file}", "--high-security")
    assert data["high_security"] is True
    assert data["client_secret"] == ""
    assert Client.objects.get(client_id=data["client_id"]).high_security
    assert "high security (FAPI 2.0" in run(
        *args, "--name=Text", f"--jwks={keys_file}", "--high-security"
    )
    assert "high_security: True" in run("show", data["client_id"])

    with pytest.raises(CommandError, match="high_security: The high-security profile needs"):
        run(*args, "--name=Keyless", "--high-security")
    with pytest.raises(CommandError, match="public app"):
        run(
            "create",
            "--kind=spa",
            "--name=SPA",
            "--redirect-uri=https://spa.example.com/cb",
            "--high-security",
        )
    assert not Client.objects.filter(name__in=["Keyless", "SPA"]).exists()


def test_the_wizard_offers_dpop_par_and_the_profile(admin_client):
    page = admin_client.get(REGISTER_URL).content.decode()
    for name in ("require_dpop", "require_pushed_authorization_requests", "high_security"):
        assert f'name="{name}"' in page

    strict, _ = register(admin_client, name="Strict", require_dpop="on")
    assert strict.require_dpop
    assert not strict.require_pushed_authorization_requests
    pushed, _ = register(admin_client, name="Pushed", require_pushed_authorization_requests="on")
    assert pushed.require_pushed_authorization_requests
    assert not pushed.require_dpop
    bank, _ = register(
        admin_client,
        name="Bank",
        redirect_uris="https://bank.example.com/cb",
        jwks=json.dumps(KEYS),
        high_security="on",
    )
    assert bank.high_security
    assert bank.client_secret == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "needs the app's public keys"),
        ({"kind": "spa", "redirect_uris": "https://spa.example.com/cb"}, "public app"),
    ],
)
def test_the_wizard_refuses_the_profile_as_a_form_error(admin_client, overrides, message):
    data = register_form(name="Weak", high_security="on", **overrides)
    response = admin_client.post(REGISTER_URL, data)
    assert response.status_code == HTTPStatus.OK
    errors = response.context["form"].errors
    assert message in " ".join(errors["high_security"])
    assert not Client.objects.filter(name="Weak").exists()


def test_the_change_form_switches_the_profile_on_with_keys_and_audits_it(admin_client, admin_user):
    client, _secret = services.register_client(
        actor=admin_user, kind=Client.Kind.WEB, name="Wiki", **WEB
    )
    data = change_form_data(admin_client, client)
    refused = admin_client.post(url("change", client), {**data, "high_security": "on"})
    assert refused.status_code == HTTPStatus.OK
    errors = refused.context["adminform"].form.errors
    assert "needs the app's public keys" in " ".join(errors["high_security"])
    client.refresh_from_db()
    assert not client.high_security

    response = admin_client.post(
        url("change", client), {**data, "high_security": "on", "jwks": json.dumps(KEYS)}
    )
    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    client.refresh_from_db()
    assert client.high_security
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("pk")
    assert event.actor == admin_user
    assert "high_security" in event.extra["fields"]
