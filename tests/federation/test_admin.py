"""Upstream providers in the admin: secrets write-only, changes audited, "test connection"."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from accounts.models import AuditEvent
from federation.models import UpstreamProvider
from federation.secrets import decrypt_secret
from tests.federation.fake_provider import FakeProvider

SECRET = "upstream-client-secret-never-shown"


@pytest.fixture(scope="module")
def fake():
    provider = FakeProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def form_data(fake, **overrides):
    data = {
        "name": "Corp",
        "slug": "corp",
        "kind": "oidc",
        "enabled": "on",
        "show_on_sign_in": "on",
        "issuer": fake.url,
        "tenant": "",
        "client_id": "idp",
        "client_secret": SECRET,
        "scopes": "openid profile email",
        "allow_private_network": "on",
        "email_domains": "corp.example",
        "username_claim": "preferred_username",
        "first_name_claim": "given_name",
        "last_name_claim": "family_name",
        "groups_claim": "groups",
        "group_mapping": "{}",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_an_administrator_adds_a_provider_whose_secret_is_stored_encrypted_and_never_shown(
    admin_client, fake
):
    add = reverse("admin:federation_upstreamprovider_add")
    response = admin_client.post(add, form_data(fake))
    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    provider = UpstreamProvider.objects.get(slug="corp")
    assert SECRET not in provider.client_secret_encrypted
    assert decrypt_secret(provider.client_secret_encrypted) == SECRET
    event = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_PROVIDER_CHANGED)
    assert event.extra["secret_changed"] is True
    assert SECRET not in str(event.extra)

    change = reverse("admin:federation_upstreamprovider_change", args=[provider.pk])
    page = admin_client.get(change).content.decode()
    assert SECRET not in page
    assert provider.client_secret_encrypted not in page
    assert "/accounts/upstream/corp/login/callback/" in page  # the redirect URI to register

    # Saved again without a secret: the stored one stays.
    response = admin_client.post(change, form_data(fake, client_secret="", name="Corp SSO"))
    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    provider.refresh_from_db()
    assert provider.name == "Corp SSO"
    assert decrypt_secret(provider.client_secret_encrypted) == SECRET


def test_a_provider_on_a_private_address_needs_it_allowed(admin_client, fake):
    add = reverse("admin:federation_upstreamprovider_add")
    response = admin_client.post(add, form_data(fake, allow_private_network=None))
    assert response.status_code == HTTPStatus.OK
    assert "private network" in response.content.decode()
    https_loopback = form_data(fake, allow_private_network=None, issuer="https://127.0.0.1:9")
    response = admin_client.post(add, https_loopback)
    assert response.status_code == HTTPStatus.OK
    assert "private or loopback address" in response.content.decode()
    assert not UpstreamProvider.objects.exists()


def test_a_group_carrying_administration_permissions_is_never_mapped(admin_client, fake):
    admins = Group.objects.create(name="Admins")
    admins.permissions.add(Permission.objects.get(codename="change_user"))
    add = reverse("admin:federation_upstreamprovider_add")
    response = admin_client.post(add, form_data(fake, group_mapping='{"it-admins": "Admins"}'))
    assert response.status_code == HTTPStatus.OK
    assert "administration permissions" in response.content.decode()
    assert not UpstreamProvider.objects.exists()


def test_an_entra_id_preset_needs_its_tenant_id(admin_client, fake):
    add = reverse("admin:federation_upstreamprovider_add")
    response = admin_client.post(add, form_data(fake, kind="entra", issuer="", tenant="corp"))
    assert response.status_code == HTTPStatus.OK
    assert "tenant" in response.content.decode()
    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    response = admin_client.post(add, form_data(fake, kind="entra", issuer="", tenant=tenant))
    assert response.status_code == HTTPStatus.FOUND
    from federation.providers import issuer_of, social_app

    provider = UpstreamProvider.objects.get()
    assert issuer_of(provider) == f"https://login.microsoftonline.com/{tenant}/v2.0"
    assert social_app(provider).provider == "upstream"


def test_test_connection_shows_the_issuer_and_endpoints_read_through_the_safe_sender(
    admin_client, fake
):
    fake.reset()
    admin_client.post(reverse("admin:federation_upstreamprovider_add"), form_data(fake))
    provider = UpstreamProvider.objects.get()
    changelist = reverse("admin:federation_upstreamprovider_changelist")
    response = admin_client.post(
        changelist,
        {"action": "test_connection", "_selected_action": [provider.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert f"issuer {fake.url}" in text
    assert f"{fake.url}/token" in text

    # Without the private network allowed, the sender refuses the loopback address.
    UpstreamProvider.objects.filter(pk=provider.pk).update(allow_private_network=False)
    response = admin_client.post(
        changelist,
        {"action": "test_connection", "_selected_action": [provider.pk]},
        follow=True,
    )
    assert "refused" in response.content.decode()
