"""Registering an upstream SAML identity provider in the admin: by its metadata URL (fetched
through the safe sender from the real upstream), an uploaded document, or by hand."""

from __future__ import annotations

from http import HTTPStatus

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent
from federation.models import UpstreamProvider
from federation.saml.metadata import certificate_bodies, read_idp_metadata
from tests.federation.saml_helpers import certificate_for, other_key

pytestmark = pytest.mark.spec("SAML 2.0 Metadata", "2.4.3")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(scope="module")
def upstream_metadata(upstream_idp) -> bytes:
    return requests.get(f"{upstream_idp.url}/saml/metadata/", timeout=10).content


def saml_form(**overrides):
    data = {
        "name": "Corp SAML",
        "slug": "corp-saml",
        "kind": "saml",
        "enabled": "on",
        "show_on_sign_in": "on",
        "email_domains": "corp.example",
        "email_attribute": "email",
        "username_claim": "preferred_username",
        "first_name_claim": "given_name",
        "last_name_claim": "family_name",
        "groups_claim": "groups",
        "group_mapping": "{}",
        "scopes": "openid",
        "mfa_authn_contexts": "https://refeds.org/profile/mfa",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


ADD = "admin:federation_upstreamprovider_add"


def test_an_administrator_registers_a_saml_provider_by_its_metadata_url(
    admin_client, upstream_idp, upstream_metadata
):
    url = f"{upstream_idp.url}/saml/metadata/"
    response = admin_client.post(
        reverse(ADD), saml_form(saml_metadata_url=url, allow_private_network="on")
    )
    assert response.status_code == HTTPStatus.FOUND, response.content[:3000]
    provider = UpstreamProvider.objects.get(slug="corp-saml")
    expected = read_idp_metadata(upstream_metadata)
    assert provider.saml_entity_id == expected.entity_id == f"{upstream_idp.url}/saml/metadata/"
    assert provider.saml_sso_url == f"{upstream_idp.url}/saml/sso/redirect/"
    assert certificate_bodies(provider.saml_certificate)
    assert provider.saml_metadata_xml
    event = AuditEvent.objects.get(type=AuditEvent.Type.UPSTREAM_PROVIDER_CHANGED)
    assert event.extra["provider"] == "corp-saml"
    page = admin_client.get(
        reverse("admin:federation_upstreamprovider_change", args=[provider.pk])
    ).content.decode()
    assert "/accounts/saml/corp-saml/acs/" in page  # the ACS URL to register upstream
    # "Test the connection" reads the metadata again through the safe sender.
    changelist = reverse("admin:federation_upstreamprovider_changelist")
    response = admin_client.post(
        changelist,
        {"action": "test_connection", "_selected_action": [provider.pk]},
        follow=True,
    )
    assert "sso/redirect/" in response.content.decode()
    assert b'class="success"' in response.content, response.content[-3000:]


def test_a_metadata_url_on_a_private_address_is_refused_unless_allowed(admin_client, upstream_idp):
    response = admin_client.post(
        reverse(ADD), saml_form(saml_metadata_url=f"{upstream_idp.url}/saml/metadata/")
    )
    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors["saml_metadata_url"]
    assert not UpstreamProvider.objects.exists()


def test_uploaded_metadata_registers_the_provider_and_an_entity_declaration_is_refused(
    admin_client, upstream_metadata
):
    upload = SimpleUploadedFile("idp.xml", upstream_metadata, content_type="application/xml")
    response = admin_client.post(reverse(ADD), saml_form(saml_metadata_file=upload))
    assert response.status_code == HTTPStatus.FOUND, response.content[:3000]
    assert UpstreamProvider.objects.get().saml_sso_url.endswith("/saml/sso/redirect/")

    body = upstream_metadata.decode().split("?>", 1)[-1]
    evil = '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + body
    upload = SimpleUploadedFile("evil.xml", evil.encode(), content_type="application/xml")
    response = admin_client.post(reverse(ADD), saml_form(slug="evil", saml_metadata_file=upload))
    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors["saml_metadata_file"]
    assert b"root:" not in response.content
    assert UpstreamProvider.objects.count() == 1


def test_a_saml_provider_given_by_hand_needs_a_readable_certificate(admin_client):
    certificate = certificate_for(other_key())
    by_hand = saml_form(
        saml_entity_id="https://idp.example.com/saml",
        saml_sso_url="https://idp.example.com/saml/sso",
        saml_certificate="not a certificate",
    )
    response = admin_client.post(reverse(ADD), by_hand)
    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors["saml_certificate"]

    response = admin_client.post(reverse(ADD), {**by_hand, "saml_certificate": certificate})
    assert response.status_code == HTTPStatus.FOUND, response.content[:3000]
    provider = UpstreamProvider.objects.get()
    assert provider.saml_entity_id == "https://idp.example.com/saml"
    assert provider.saml_certificate == certificate
    assert provider.client_id == ""
