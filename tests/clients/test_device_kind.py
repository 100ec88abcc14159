"""The "device or command-line app" kind (RFC 8628): registered in the admin, by the CLI and by
import, always a public client on the device code grant, with no redirect URIs."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from oauth_clients import services
from oauth_clients.models import Client
from tests.clients.test_admin import register, register_form, url
from tests.clients.test_cli import run, run_json

DEVICE_FIELDS = {"redirect_uris": "", "post_logout_redirect_uris": ""}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_registering_a_device_app_in_the_admin_gives_a_public_device_code_client(admin_client):
    client, _ = register(admin_client, kind="device", name="Deploy CLI", **DEVICE_FIELDS)
    assert client.kind == Client.Kind.DEVICE
    assert client.client_type == Client.CLIENT_PUBLIC
    assert client.allowed_grant_types() == {Client.GRANT_DEVICE_CODE}
    html = admin_client.get(url("setup", client)).content.decode()
    assert 'id="client-secret"' not in html
    assert reverse("oauth2_provider:device-authorization") in html
    assert "urn:ietf:params:oauth:grant-type:device_code" in html


def test_the_register_page_explains_the_device_kind(admin_client):
    html = admin_client.get("/admin/oauth_clients/client/register/").content.decode()
    assert "Device or command-line app" in html
    assert "/device" in html


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"redirect_uris": "https://cli.example.com/cb"}, "redirect_uris"),
        ({"post_logout_redirect_uris": "https://cli.example.com/"}, "post_logout_redirect_uris"),
        ({"frontchannel_logout_uri": "https://cli.example.com/fcl"}, "frontchannel_logout_uri"),
    ],
)
def test_a_device_app_with_browser_addresses_is_refused_and_nothing_saved(
    admin_client, overrides, field
):
    register(admin_client, kind="device", name="Deploy CLI", **DEVICE_FIELDS)  # positive first
    response = admin_client.post(
        "/admin/oauth_clients/client/register/",
        register_form(kind="device", name="Other CLI", **{**DEVICE_FIELDS, **overrides}),
    )
    assert response.status_code == HTTPStatus.OK
    assert field in response.context["form"].errors
    assert not Client.objects.filter(name="Other CLI").exists()
    with pytest.raises(ValidationError):
        services.register_client(
            actor=None, kind="device", name="Other CLI", **{**DEVICE_FIELDS, **overrides}
        )


def test_clients_create_kind_device_then_export_and_import_keep_it(db, tmp_path):
    data = run_json("create", "--kind=device", "--name=Deploy CLI", "--client-id=deploy-cli")
    assert data["client_secret"] == ""
    client = Client.objects.get(client_id="deploy-cli")
    assert client.kind == Client.Kind.DEVICE
    assert client.allowed_grant_types() == {Client.GRANT_DEVICE_CODE}
    assert client.allowed_scopes.split() == ["email", "openid", "profile"]

    exported = run("export")
    (tmp_path / "registry.json").write_text(exported)
    Client.objects.all().delete()
    result = run_json("import", str(tmp_path / "registry.json"))
    assert [item["client_id"] for item in result["created"]] == ["deploy-cli"]
    again = Client.objects.get(client_id="deploy-cli")
    assert (again.kind, again.client_type) == (Client.Kind.DEVICE, Client.CLIENT_PUBLIC)
    assert json.loads(run("export")) == json.loads(exported)
