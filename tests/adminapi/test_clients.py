"""Client apps through the API: the registry's services, each change audited."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from accounts import services as account_services
from accounts.models import AuditEvent
from oauth_clients.models import Client
from oauth_clients.secrets import check_client_secret
from tests.adminapi.conftest import assert_problem
from tests.oidc.pkjwt_helpers import ClientKey, jwks_of

pytestmark = pytest.mark.django_db

WIKI = {
    "kind": "web",
    "name": "Wiki",
    "client_id": "wiki",
    "redirect_uris": ["https://wiki.example.com/callback"],
}


def _types(api) -> list[str]:
    return list(
        AuditEvent.objects.filter(actor_repr=api.actor, client_repr="wiki")
        .order_by("id")
        .values_list("type", flat=True)
    )


def test_registering_an_app_shows_its_secret_once(api):
    response = api.post("/clients/", WIKI)
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    assert body["client"]["client_id"] == "wiki"
    assert body["client"]["scopes"] == ["email", "openid", "profile"]
    wiki = Client.objects.get(client_id="wiki")
    assert check_client_secret(body["client_secret"], wiki.client_secret)
    assert "client_secret" not in api.get("/clients/wiki").json()
    assert _types(api) == [AuditEvent.Type.CLIENT_CREATED]
    listed = api.get("/clients/?kind=web").json()["items"]
    assert [item["client_id"] for item in listed] == ["wiki"]


def test_registration_rules_are_field_problems(api):
    assert api.post("/clients/", WIKI).status_code == HTTPStatus.CREATED
    body = assert_problem(
        api.post("/clients/", {**WIKI, "client_id": "wiki2", "redirect_uris": ["ftp://x"]}),
        HTTPStatus.BAD_REQUEST,
        "invalid-request",
    )
    assert body["errors"][0]["field"] == "redirect_uris"
    assert_problem(api.post("/clients/", {**WIKI, "kind": "saml"}), HTTPStatus.BAD_REQUEST)
    assert_problem(api.post("/clients/", WIKI), HTTPStatus.BAD_REQUEST)  # the id is taken


def test_changing_rotating_disabling_and_enabling_an_app(api):
    assert api.post("/clients/", WIKI).status_code == HTTPStatus.CREATED
    changed = api.patch("/clients/wiki", {"name": "Team wiki", "requires_mfa": True})
    assert changed.status_code == HTTPStatus.OK, changed.content
    assert changed.json()["name"] == "Team wiki"
    assert changed.json()["requires_mfa"]
    rotated = api.post("/clients/wiki/rotate-secret", {"grace_seconds": 3600}).json()
    wiki = Client.objects.get(client_id="wiki")
    assert check_client_secret(rotated["client_secret"], wiki.client_secret)
    assert rotated["previous_valid_until"] is not None
    assert api.post("/clients/wiki/disable").json()["is_active"] is False
    assert api.post("/clients/wiki/enable").json()["is_active"] is True
    assert _types(api) == [
        AuditEvent.Type.CLIENT_CREATED,
        AuditEvent.Type.CLIENT_CHANGED,
        AuditEvent.Type.CLIENT_SECRET_ROTATED,
        AuditEvent.Type.CLIENT_DISABLED,
        AuditEvent.Type.CLIENT_ENABLED,
    ]
    body = assert_problem(
        api.post("/clients/wiki/rotate-secret", {"grace_seconds": -1}), HTTPStatus.BAD_REQUEST
    )
    assert body["errors"][0]["field"] == "grace_seconds"
    assert_problem(api.patch("/clients/wiki", {"kind": "spa"}), HTTPStatus.BAD_REQUEST)


def test_assigning_groups_and_users(api, user):
    assert api.post("/clients/", WIKI).status_code == HTTPStatus.CREATED
    account_services.create_group(name="Engineering", actor=None)
    assert api.patch("/clients/wiki", {"access_policy": "assigned"}).status_code == 200
    assigned = api.post("/clients/wiki/assignments", {"group": "Engineering"}).json()
    assert assigned == {
        "access_policy": "assigned",
        "assigned_groups": ["Engineering"],
        "assigned_users": [],
    }
    assigned = api.post("/clients/wiki/assignments", {"username": "alice"}).json()
    assert assigned["assigned_users"] == ["alice"]
    removed = api.post("/clients/wiki/assignments/remove", {"username": "alice"}).json()
    assert removed["assigned_users"] == []
    assert_problem(
        api.post("/clients/wiki/assignments", {"group": "Engineering", "username": "alice"}),
        HTTPStatus.BAD_REQUEST,
    )
    assert_problem(api.post("/clients/wiki/assignments", {"group": "Nope"}), 400)
    changes = AuditEvent.objects.filter(actor_repr=api.actor, type=AuditEvent.Type.CLIENT_CHANGED)
    assert [event.extra["change"] for event in changes.order_by("id")] == [
        "access_policy",
        "assignment_added",
        "assignment_added",
        "assignment_removed",
    ]


def test_export_and_import_the_registry(api):
    assert api.post("/clients/", WIKI).status_code == HTTPStatus.CREATED
    document = api.get("/clients/export").json()
    assert "wiki" in [entry["client_id"] for entry in document["clients"]]
    assert "client_secret" not in str(document)
    entry = next(entry for entry in document["clients"] if entry["client_id"] == "wiki")
    entry["description"] = "Where we write things down"
    new = {**entry, "client_id": "wiki-staging", "name": "Wiki (staging)"}
    document["clients"] = [entry, new]
    dry = api.post("/clients/import", {"document": document, "dry_run": True})
    assert dry.status_code == HTTPStatus.OK, dry.content
    dry = dry.json()
    assert dry["dry_run"]
    assert dry["created"] == [{"client_id": "wiki-staging", "client_secret": ""}]
    assert not Client.objects.filter(client_id="wiki-staging").exists()
    report = api.post("/clients/import", {"document": document}).json()
    assert report["updated"] == [{"client_id": "wiki", "fields": ["description"]}]
    [created] = report["created"]
    staging = Client.objects.get(client_id="wiki-staging")
    assert check_client_secret(created["client_secret"], staging.client_secret)
    entry["require_pkce"] = False  # weakening: refused without force, nothing changes
    body = assert_problem(
        api.post("/clients/import", {"document": {**document, "clients": [entry]}}),
        HTTPStatus.BAD_REQUEST,
        "import-refused",
    )
    assert "PKCE" in body["errors"][0]["message"]
    assert Client.objects.get(client_id="wiki").require_pkce


def test_no_service_client_grants_admin_scopes_it_does_not_hold(api, superuser_api):
    service = {"kind": "service", "name": "Mint", "scopes": ["admin:superusers"]}
    harmless = api.post("/clients/", {**service, "scopes": ["admin:audit"]})
    assert harmless.status_code == HTTPStatus.CREATED, harmless.content
    assert_problem(api.post("/clients/", service), HTTPStatus.FORBIDDEN, "insufficient-scope")
    assert Client.objects.filter(name="Mint").count() == 1
    client_id = harmless.json()["client"]["client_id"]
    assert_problem(
        api.patch(f"/clients/{client_id}", {"scopes": ["admin:superusers"]}),
        HTTPStatus.FORBIDDEN,
    )
    document = api.get("/clients/export").json()
    for entry in document["clients"]:
        if entry["client_id"] == client_id:
            entry["scopes"] = ["admin:superusers"]
    assert_problem(api.post("/clients/import", {"document": document}), HTTPStatus.FORBIDDEN)
    assert Client.objects.get(client_id=client_id).allowed_scopes == "admin:audit"
    granted = superuser_api.patch(f"/clients/{client_id}", {"scopes": ["admin:superusers"]})
    assert granted.status_code == HTTPStatus.OK, granted.content


def test_device_api_and_key_clients_are_registered_by_kind(api):
    from jwcrypto import jwk

    device = api.post("/clients/", {"kind": "device", "name": "CLI", "client_id": "cli"})
    assert device.status_code == HTTPStatus.CREATED, device.content
    assert device.json()["client_secret"] == ""
    orders = api.post(
        "/clients/",
        {
            "kind": "api",
            "name": "Orders API",
            "client_id": "orders",
            "audience": "https://api.example.com/orders",
        },
    )
    assert orders.status_code == HTTPStatus.CREATED, orders.content
    assert orders.json()["client"]["audience"] == "https://api.example.com/orders"
    public = jwk.JWK.generate(kty="RSA", size=2048, kid="batch-1").export_public(as_dict=True)
    batch = api.post(
        "/clients/",
        {"kind": "service", "name": "Batch", "client_id": "batch", "jwks": {"keys": [public]}},
    )
    assert batch.status_code == HTTPStatus.CREATED, batch.content
    assert batch.json()["client_secret"] == ""
    assert batch.json()["client"]["jwks"]["keys"][0]["kid"] == "batch-1"
    assert Client.objects.get(client_id="cli").kind == Client.Kind.DEVICE

    # An API without its audience, and keys with a private part, are field problems.
    assert_problem(
        api.post("/clients/", {"kind": "api", "name": "No audience"}), HTTPStatus.BAD_REQUEST
    )
    private = jwk.JWK.generate(kty="RSA", size=2048).export_private(as_dict=True)
    assert_problem(
        api.post("/clients/", {"kind": "service", "name": "Leaky", "jwks": {"keys": [private]}}),
        HTTPStatus.BAD_REQUEST,
    )


def test_a_saml_app_is_registered_from_its_metadata_or_by_hand(api, tmp_path):
    from tests.clients.saml_helpers import SP_ACS_URL, SP_ENTITY_ID, make_sp_keys, sp_metadata

    keys = make_sp_keys(tmp_path)
    from_metadata = api.post(
        "/clients/saml",
        {"name": "Wiki", "client_id": "wiki", "metadata_xml": sp_metadata(keys).decode()},
    )
    assert from_metadata.status_code == HTTPStatus.CREATED, from_metadata.content
    body = from_metadata.json()
    assert body["client_secret"] == ""
    assert body["client"]["kind"] == "saml"
    assert body["client"]["saml"]["entity_id"] == SP_ENTITY_ID
    assert _types(api) == [AuditEvent.Type.CLIENT_CREATED]
    by_hand = api.post(
        "/clients/saml",
        {
            "name": "Tickets",
            "entity_id": "https://tickets.example.com/saml",
            "acs_urls": ["https://tickets.example.com/saml/acs"],
            "certificates": [keys.cert_pem],
        },
    )
    assert by_hand.status_code == HTTPStatus.CREATED, by_hand.content
    assert by_hand.json()["client"]["saml"]["entity_id"] == "https://tickets.example.com/saml"

    # The same entity ID again, metadata that is not XML, an ACS that is not https, and a
    # metadata URL on a private address: each a problem, nothing registered.
    for payload in (
        {"name": "Again", "metadata_xml": sp_metadata(keys).decode()},
        {"name": "Broken", "metadata_xml": "<not-metadata"},
        {
            "name": "Plain",
            "entity_id": "https://plain.example.com/saml",
            "acs_urls": ["http://plain.example.com/acs"],
            "certificates": [keys.cert_pem],
        },
        {"name": "Inside", "metadata_url": "https://10.0.0.7/metadata"},
    ):
        assert_problem(api.post("/clients/saml", payload), HTTPStatus.BAD_REQUEST)
    assert Client.objects.filter(kind=Client.Kind.SAML).count() == 2
    assert SP_ACS_URL in str(api.get("/clients/wiki").json()["saml"])


def test_the_admin_api_registers_changes_and_refuses_the_profile(api):
    keys = jwks_of(ClientKey.ec(kid="k1"))
    body = {
        "kind": "web",
        "name": "Bank",
        "client_id": "bank",
        "redirect_uris": ["https://bank.example.com/cb"],
    }
    refused = api.post("/clients/", {**body, "high_security": True})
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["errors"][0]["field"] == "high_security"

    created = api.post("/clients/", {**body, "jwks": keys, "high_security": True})
    assert created.status_code == HTTPStatus.CREATED, created.content
    assert created.json()["client"]["high_security"] is True
    assert created.json()["client_secret"] == ""
    assert api.get("/clients/bank").json()["high_security"] is True

    changed = api.patch("/clients/bank", {"high_security": False})
    assert changed.status_code == HTTPStatus.OK, changed.content
    assert changed.json()["high_security"] is False
    event = AuditEvent.objects.filter(type=AuditEvent.Type.CLIENT_CHANGED).latest("pk")
    assert event.extra["weakened"] == ["leaves the high-security profile (FAPI 2.0)"]
