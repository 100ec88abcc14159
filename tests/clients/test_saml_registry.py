"""SAML apps in the registry: registered from metadata (file, URL) or by hand, changed and
refreshed through the services, never usable as OAuth clients, in the admin and the `clients`
command (create, show, export/import with --force for a moved ACS or entity ID)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients import selectors, services
from oauth_clients.models import Assignment, Client, SamlServiceProvider
from tests.clients.saml_helpers import (
    NAMEID_PERSISTENT,
    SP_ACS_URL,
    SP_ENTITY_ID,
    MetadataServer,
    make_sp_keys,
    sp_metadata,
)
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    assert_error_page,
    authorization_params,
    redirect_query,
)
from tests.oidc.conftest import basic_auth, make_client, post_form

EMAIL = SamlServiceProvider.NameIdFormat.EMAIL
ENTITIES = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'


@pytest.fixture
def keys(tmp_path):
    return make_sp_keys(tmp_path)


@pytest.fixture
def metadata(keys) -> bytes:
    return sp_metadata(keys)


@pytest.fixture
def server() -> Iterator[MetadataServer]:
    published = MetadataServer()
    yield published
    published.close()


@pytest.fixture
def saml_app(db, admin_user, metadata) -> Client:
    return services.register_saml_app(name="Wiki", metadata_xml=metadata, actor=admin_user)


def run(*args: str, **options) -> str:
    out = StringIO()
    call_command("clients", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def run_json(*args: str, **options):
    return json.loads(run(*args, "--json", **options))


# --- register


def test_an_app_registered_from_pysaml2_metadata_keeps_what_it_declares(
    admin_user, saml_app, keys, metadata
):
    sp = saml_app.saml_sp
    assert saml_app.kind == Client.Kind.SAML
    assert saml_app.client_secret == ""
    assert saml_app.algorithm == ""
    assert sp.entity_id == SP_ENTITY_ID
    assert sp.default_acs()["url"] == SP_ACS_URL
    assert sp.acs_for(url=SP_ACS_URL) == sp.default_acs()
    assert sp.acs_for(url=SP_ACS_URL + "/") is None  # exact match only
    assert sp.certificate_list() == [keys.cert_pem]
    assert sp.want_authn_requests_signed is True
    assert sp.nameid_format == NAMEID_PERSISTENT
    assert sp.metadata_xml == metadata.decode()
    event = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED, client=saml_app)
    assert event.actor == admin_user
    assert event.extra["entity_id"] == SP_ENTITY_ID


def test_an_app_registered_by_hand(admin_user, keys):
    client = services.register_saml_app(
        name="Tickets",
        entity_id="https://tickets.example.com/saml",
        acs_urls=["https://tickets.example.com/acs"],
        certificates=keys.cert_pem,
        actor=admin_user,
        requires_mfa=True,
    )
    sp = client.saml_sp
    assert sp.acs_urls == [
        {
            "url": "https://tickets.example.com/acs",
            "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            "index": 0,
            "is_default": True,
        }
    ]
    assert sp.nameid_format == EMAIL
    assert client.requires_mfa


def test_an_app_registered_from_a_metadata_url_on_loopback_needs_the_private_network(
    admin_user, server, metadata
):
    url = server.publish("/md", metadata)
    with pytest.raises(ValidationError) as refused:
        services.register_saml_app(name="Wiki", metadata_url=url, actor=admin_user)
    assert "internal" in refused.value.messages[0]
    assert not Client.objects.exists()

    client = services.register_saml_app(
        name="Wiki", metadata_url=url, actor=admin_user, allow_private_network=True
    )
    assert client.saml_sp.entity_id == SP_ENTITY_ID
    assert client.saml_sp.metadata_url == url
    assert client.saml_sp.metadata_fetched_at is not None


@pytest.mark.parametrize(
    "acs",
    [
        "http://tickets.example.com/acs",
        "https://tickets.example.com/acs#fragment",
        "https://*.example.com/acs",
        "javascript:alert(1)",
    ],
)
def test_unsafe_acs_urls_are_refused(admin_user, acs):
    assert services.register_saml_app(
        name="Loopback",
        entity_id="https://dev.example.com/saml",
        acs_urls=["http://127.0.0.1:8080/acs"],
        actor=admin_user,
    )
    with pytest.raises(ValidationError) as refused:
        services.register_saml_app(
            name="Tickets",
            entity_id="https://tickets.example.com/saml",
            acs_urls=[acs],
            actor=admin_user,
        )
    assert "acs_urls" in refused.value.message_dict


def test_a_second_app_with_the_same_entity_id_is_refused(admin_user, saml_app, metadata):
    with pytest.raises(ValidationError) as refused:
        services.register_saml_app(name="Wiki again", metadata_xml=metadata, actor=admin_user)
    assert "already registered" in refused.value.message_dict["entity_id"][0]
    assert Client.objects.filter(kind=Client.Kind.SAML).count() == 1


def test_signed_requests_need_a_certificate_and_one_source_is_needed(admin_user, keys, metadata):
    with pytest.raises(ValidationError) as refused:
        services.register_saml_app(
            name="Tickets",
            entity_id="https://tickets.example.com/saml",
            acs_urls=["https://tickets.example.com/acs"],
            want_authn_requests_signed=True,
            actor=admin_user,
        )
    assert "certificates" in refused.value.message_dict
    with pytest.raises(ValidationError):
        services.register_saml_app(name="Nothing", actor=admin_user)
    with pytest.raises(ValidationError):
        services.register_saml_app(
            name="Both",
            metadata_xml=metadata,
            acs_urls=["https://tickets.example.com/acs"],
            actor=admin_user,
        )
    with pytest.raises(ValidationError) as oauth:
        services.register_saml_app(
            name="Odd", metadata_xml=metadata, actor=admin_user, redirect_uris=["https://x/cb"]
        )
    assert "redirect_uris" in oauth.value.message_dict
    with pytest.raises(ValidationError):
        services.register_client(actor=admin_user, kind=Client.Kind.SAML, name="Via OIDC")


# --- never an OAuth client


def test_the_oidc_authorize_endpoint_refuses_a_saml_app(db, client, user):
    app = make_client(
        name="Switched",
        client_id="switched",
        redirect_uris="https://sw.example.com/cb",
        is_trusted=True,
        skip_authorization=True,
    )
    client.force_login(user)
    redirect_query(
        client.get(AUTHORIZE_URL, authorization_params(app)), "https://sw.example.com/cb"
    )
    Client.objects.filter(pk=app.pk).update(kind=Client.Kind.SAML)
    assert_error_page(client.get(AUTHORIZE_URL, authorization_params(app)))


def test_the_token_endpoint_answers_invalid_client_for_a_saml_app(db, client):
    app = make_client(
        name="Batch",
        client_id="batch",
        secret="s3cret-s3cret-s3cret",
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
        algorithm="",
        kind=Client.Kind.SERVICE,
    )
    token_url = reverse("oauth2_provider:token")
    auth = basic_auth("batch", app.test_secret)
    grant = {"grant_type": "client_credentials"}
    assert post_form(client, token_url, grant, HTTP_AUTHORIZATION=auth).status_code == 200
    Client.objects.filter(pk=app.pk).update(kind=Client.Kind.SAML)
    response = post_form(client, token_url, grant, HTTP_AUTHORIZATION=auth)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"


def test_a_registered_saml_apps_client_id_gets_the_error_page(client, user, saml_app):
    client.force_login(user)
    params = {
        "response_type": "code",
        "client_id": saml_app.client_id,
        "redirect_uri": SP_ACS_URL,
        "scope": "openid",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    assert_error_page(client.get(AUTHORIZE_URL, params))


# --- change and refresh


def test_service_provider_settings_change_through_the_service(admin_user, saml_app):
    fields = services.update_saml_sp(
        client=saml_app,
        actor=admin_user,
        changes={
            "nameid_format": EMAIL,
            "sign_response": True,
            "attribute_names": {"email": "mail"},
        },
    )
    assert fields == ["attribute_names", "nameid_format", "sign_response"]
    sp = SamlServiceProvider.objects.get(client=saml_app)
    assert (sp.nameid_format, sp.sign_response, sp.attribute_names) == (
        EMAIL,
        True,
        {"email": "mail"},
    )
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("pk")
    assert "saml.sign_response" in event.extra["fields"]

    with pytest.raises(ValidationError) as refused:
        services.update_saml_sp(
            client=saml_app,
            actor=admin_user,
            changes={"acs_urls": ["http://wiki.example.com/acs"]},
        )
    assert "acs_urls" in refused.value.message_dict
    with pytest.raises(ValidationError):
        services.update_saml_sp(client=saml_app, actor=admin_user, changes={"client": 1})


def test_refresh_takes_the_new_endpoints_and_keeps_the_entity_id(
    admin_user, server, keys, tmp_path
):
    url = server.publish("/md", sp_metadata(keys))
    app = services.register_saml_app(
        name="Wiki", metadata_url=url, actor=admin_user, allow_private_network=True
    )
    server.publish("/md", sp_metadata(keys, acs_url="https://wiki.example.com/saml/acs2"))
    fields = services.refresh_saml_metadata(client=app, actor=admin_user)
    assert fields == ["acs_urls"]
    app.saml_sp.refresh_from_db()
    assert app.saml_sp.default_acs()["url"] == "https://wiki.example.com/saml/acs2"

    server.publish("/md", sp_metadata(keys, entity_id="https://other.example.com/saml"))
    with pytest.raises(ValidationError) as refused:
        services.refresh_saml_metadata(client=app, actor=admin_user)
    assert "entity ID" in refused.value.messages[0]


# --- admin


def test_admin_registers_a_saml_app_from_an_uploaded_file(admin_client, metadata):
    url = reverse("admin:oauth_clients_client_register")
    upload = SimpleUploadedFile("sp.xml", metadata, content_type="application/xml")
    response = admin_client.post(
        url,
        {
            "kind": "saml",
            "name": "Wiki",
            "scopes": ["openid", "email"],
            "saml_metadata_file": upload,
        },
    )
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    app = Client.objects.get(kind=Client.Kind.SAML)
    assert app.saml_sp.entity_id == SP_ENTITY_ID
    setup = admin_client.get(response["Location"])
    assert "/saml/metadata/" in setup.content.decode()
    change = admin_client.get(reverse("admin:oauth_clients_client_change", args=[app.pk]))
    assert change.status_code == HTTPStatus.OK
    body = change.content.decode()
    assert SP_ENTITY_ID in body
    assert "redirect_uris" not in body


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"saml_metadata_file": ENTITIES},
            "DTD or XML entities",
        ),
        ({"saml_metadata_url": "http://sp.example.com/md"}, "must use https"),
        (
            {"saml_entity_id": "https://t.example.com", "saml_acs_url": "http://t.example.com/a"},
            "must use https",
        ),
        ({}, "one of them"),
        ({"saml_metadata_file": b"no xml"}, "not well-formed XML"),
    ],
    ids=["entities", "http-metadata-url", "http-acs", "nothing", "not-xml"],
)
def test_admin_register_form_explains_bad_saml_input(admin_client, fields, message):
    url = reverse("admin:oauth_clients_client_register")
    data: dict = {"kind": "saml", "name": "Bad", "scopes": ["openid"]}
    for name, value in fields.items():
        data[name] = SimpleUploadedFile("sp.xml", value) if isinstance(value, bytes) else value
    response = admin_client.post(url, data)
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert "errornote" in body
    assert message in body
    assert not Client.objects.exists()


def test_admin_saml_page_saves_settings_and_refreshes(admin_client, saml_app, metadata):
    url = reverse("admin:oauth_clients_client_saml", args=[saml_app.pk])
    page = admin_client.get(url)
    assert page.status_code == HTTPStatus.OK
    form = page.context["form"]
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data.update(action="save", nameid_format=EMAIL, sign_response="on")
    data.pop("want_authn_requests_signed")
    data["certificates"] = saml_app.saml_sp.certificates
    saved = admin_client.post(url, data)
    assert saved.status_code == HTTPStatus.FOUND
    sp = SamlServiceProvider.objects.get(client=saml_app)
    assert sp.sign_response
    assert sp.nameid_format == EMAIL

    bad = admin_client.post(url, {**data, "acs_urls": "0 POST http://wiki.example.com/acs"})
    assert bad.status_code == HTTPStatus.OK
    assert "must use https" in bad.content.decode()

    upload = SimpleUploadedFile("sp.xml", metadata)
    refreshed = admin_client.post(url, {"action": "refresh", "metadata_file": upload})
    assert refreshed.status_code == HTTPStatus.FOUND


# --- the clients command


def test_cli_creates_shows_and_round_trips_a_saml_app(admin_user, tmp_path, metadata, keys):
    path = tmp_path / "sp.xml"
    path.write_bytes(metadata)
    created = run_json(
        "create", "--kind=saml", "--name=Wiki", f"--saml-metadata={path}", actor="root"
    )
    client_id = created["client_id"]
    assert created["entity_id"] == SP_ENTITY_ID
    assert created["saml"]["acs_urls"][0]["url"] == SP_ACS_URL

    shown = run_json("show", client_id)
    assert shown["saml"]["entity_id"] == SP_ENTITY_ID
    assert shown["idp_metadata_url"].endswith("/saml/metadata/")
    Group.objects.create(name="wiki-users")
    run("assign", client_id, "--group=wiki-users")
    assert Assignment.objects.filter(client__client_id=client_id).exists()
    run("disable", client_id)
    assert not Client.objects.get(client_id=client_id).is_active
    run("enable", client_id)

    exported = tmp_path / "registry.json"
    run("export", f"--output={exported}")
    document = json.loads(exported.read_text())
    (entry,) = [e for e in document["clients"] if e["client_id"] == client_id]
    assert entry["saml"]["certificates"] == [keys.cert_pem]
    assert run_json("import", str(exported))["unchanged"] == [client_id]

    # Gone, then back from the export: the same service provider.
    services.delete_client(client=Client.objects.get(client_id=client_id), actor=admin_user)
    assert run_json("import", str(exported))["created"][0]["client_id"] == client_id
    restored = Client.objects.get(client_id=client_id)
    assert selectors.saml_entry(restored.saml_sp) == entry["saml"]
    assert restored.access_policy == entry["access_policy"]


@pytest.mark.parametrize(
    "change",
    [
        {
            "acs_urls": [
                {
                    "url": "https://evil.example.com/acs",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                    "index": 0,
                    "is_default": True,
                }
            ]
        },
        {"entity_id": "https://evil.example.com/saml"},
    ],
    ids=["acs-url", "entity-id"],
)
def test_import_refuses_a_moved_acs_url_or_entity_id_without_force(
    admin_user, saml_app, tmp_path, change
):
    exported = tmp_path / "registry.json"
    run("export", f"--output={exported}")
    document = json.loads(exported.read_text())
    document["clients"][0]["saml"]["nameid_format"] = EMAIL
    exported.write_text(json.dumps(document))
    assert run_json("import", str(exported))["updated"][0]["fields"] == ["saml.nameid_format"]

    document["clients"][0]["saml"].update(change)
    exported.write_text(json.dumps(document))
    with pytest.raises(CommandError) as refused:
        run("import", str(exported))
    assert "use --force" in str(refused.value)
    report = run_json("import", str(exported), "--force")
    assert report["forced"][0]["client_id"] == saml_app.client_id
    sp = SamlServiceProvider.objects.get(client=saml_app)
    assert {key: getattr(sp, key) for key in change} == change


def test_cli_refuses_bad_metadata_with_the_reason(db, tmp_path):
    path = tmp_path / "idp.xml"
    path.write_bytes(b"<not-metadata/>")
    with pytest.raises(CommandError) as refused:
        run("create", "--kind=saml", "--name=Bad", f"--saml-metadata={path}")
    assert "not SAML 2.0 metadata" in str(refused.value)
    with pytest.raises(CommandError):
        run("create", "--kind=web", "--name=Web", f"--saml-metadata={path}")
