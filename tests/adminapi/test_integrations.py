"""Integrations through the API: webhooks, SCIM tokens and provisioning targets, through the
services the admin and the commands call, each change audited with the service client as actor,
and a secret shown only when it is made."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.models import AuditEvent
from oauth_clients import services as client_services
from oauth_clients.models import Client
from provisioning import crypto
from provisioning.models import ProvisioningDelivery, ScimTarget
from scim.models import ScimToken
from scim.tokens import find_token
from tests.adminapi.conftest import assert_problem
from tests.oidc.backchannel_helpers import IMMEDIATE_TASKS, Receiver
from webhooks.models import Delivery, Subscriber
from webhooks.secrets import decrypt_secret

pytestmark = pytest.mark.django_db

HOOK = {
    "name": "SIEM",
    "url": "https://siem.example.com/hooks",
    "event_types": ["user.signed_in", "user.locked"],
}
TARGET = {
    "base_url": "https://wiki.example.com/scim/v2",
    "token": "app-issued-scim-token-" + "x" * 20,
    "user_attributes": ["name", "emails"],
}


@pytest.fixture(autouse=True)
def public_dns(monkeypatch):
    """This machine has no DNS: names resolve to a public address (literals are not looked
    up, so a private address literal is still refused)."""
    from oauth_clients import uri_rules

    monkeypatch.setattr(uri_rules, "resolve_host", lambda host: ["93.184.216.34"])


def _rows(api, *types: str) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(actor_repr=api.actor)
    if types:
        events = events.filter(type__in=types)
    return list(events.order_by("id"))


# --- Webhooks


def test_adding_a_webhook_shows_its_signing_secret_once(api):
    response = api.post("/webhooks/", HOOK)
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    hook = body["webhook"]
    assert hook["url"] == HOOK["url"]
    assert hook["event_types"] == ["user.locked", "user.signed_in"]
    assert hook["is_active"] is True
    stored = Subscriber.objects.get(pk=hook["id"])
    assert stored.secret_encrypted != secret
    assert decrypt_secret(stored.secret_encrypted) == secret
    # Read back, one by one or listed: never the secret.
    assert secret not in api.get(f"/webhooks/{hook['id']}").content.decode()
    listed = api.get("/webhooks/")
    assert [item["id"] for item in listed.json()["items"]] == [hook["id"]]
    assert secret not in listed.content.decode()
    [created] = _rows(api)
    assert created.type == AuditEvent.Type.WEBHOOK_CREATED
    assert created.extra["webhook_id"] == hook["id"]
    assert created.extra["actor_client_id"] == api.client.client_id
    assert secret not in str(created.extra)


def test_changing_rotating_and_deleting_a_webhook(api):
    hook = api.post("/webhooks/", HOOK).json()
    path = f"/webhooks/{hook['webhook']['id']}"
    changed = api.patch(
        path,
        {"url": "https://siem.example.com/v2/hooks", "event_types": ["client.changed"]},
    )
    assert changed.status_code == HTTPStatus.OK, changed.content
    assert changed.json()["url"] == "https://siem.example.com/v2/hooks"
    assert changed.json()["event_types"] == ["client.changed"]
    assert api.patch(path, {"is_active": False}).json()["is_active"] is False

    rotated = api.post(f"{path}/rotate-secret")
    assert rotated.status_code == HTTPStatus.OK, rotated.content
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != hook["secret"]
    stored = Subscriber.objects.get(pk=hook["webhook"]["id"])
    assert decrypt_secret(stored.secret_encrypted) == new_secret

    Delivery.objects.create(subscriber=stored, message_id="msg_1", event_type="x", payload="{}")
    assert api.delete(path).status_code == HTTPStatus.NO_CONTENT
    assert_problem(api.get(path), HTTPStatus.NOT_FOUND, "not-found")
    assert not Delivery.objects.exists()

    rows = _rows(api)
    assert [row.type for row in rows] == [
        AuditEvent.Type.WEBHOOK_CREATED,
        AuditEvent.Type.WEBHOOK_CHANGED,
        AuditEvent.Type.WEBHOOK_CHANGED,
        AuditEvent.Type.WEBHOOK_CHANGED,
        AuditEvent.Type.WEBHOOK_CHANGED,
    ]
    assert rows[1].extra["fields"] == ["url", "event_types"]
    assert rows[2].extra["fields"] == ["is_active"]
    assert rows[3].extra["fields"] == ["secret"]
    assert rows[4].extra["change"] == "deleted"
    assert rows[4].extra["url"] == "https://siem.example.com/v2/hooks"
    assert new_secret not in str([row.extra for row in rows])


@pytest.fixture
def receiver():
    receiver = Receiver(path="/hooks")
    yield receiver
    receiver.close()


@pytest.mark.spec("Standard Webhooks", "Signature scheme")
def test_the_secret_shown_once_signs_what_the_receiver_gets_until_it_is_rotated(
    api, receiver, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS  # each delivery sent as it is queued, after commit
    made = api.post(
        "/webhooks/",
        {"url": receiver.url, "event_types": ["group.created"], "allow_private_network": True},
    )
    assert made.status_code == HTTPStatus.CREATED, made.content
    secret = made.json()["secret"]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/groups/", {"name": "Sales"}).status_code == HTTPStatus.CREATED
    [first] = receiver.wait_for(1)
    payload = Webhook(secret).verify(first.body, first.headers)
    assert payload["type"] == "group.created"
    assert payload["data"]["actor"]["username"] == api.actor

    new_secret = api.post(f"/webhooks/{made.json()['webhook']['id']}/rotate-secret").json()
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/groups/", {"name": "Ops"}).status_code == HTTPStatus.CREATED
    second = receiver.wait_for(2)[1]
    assert Webhook(new_secret["secret"]).verify(second.body, second.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(second.body, second.headers)


def test_a_receiver_that_redirects_is_not_followed(
    api, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    moved = Receiver(path="/hooks", status=HTTPStatus.FOUND, location="https://10.0.0.8/steal")
    try:
        made = api.post(
            "/webhooks/",
            {"url": moved.url, "event_types": ["group.created"], "allow_private_network": True},
        )
        assert made.status_code == HTTPStatus.CREATED, made.content
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post("/groups/", {"name": "Sales"}).status_code == HTTPStatus.CREATED
        assert len(moved.wait_for(1)) == 1
        delivery = Delivery.objects.get()
        assert delivery.status == Delivery.Status.FAILED
        assert delivery.last_status_code == HTTPStatus.FOUND
        assert "redirect" in delivery.last_error
    finally:
        moved.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://siem.example.com/hooks",  # not https
        "https://10.0.0.8/hooks",  # a private address
        "https://169.254.169.254/latest",  # the cloud's metadata service
        "https://localhost/hooks",
        "not a url",
    ],
)
def test_a_webhook_url_the_ssrf_rules_refuse_is_a_400_problem_naming_url(api, url):
    assert api.post("/webhooks/", HOOK).status_code == HTTPStatus.CREATED
    body = assert_problem(
        api.post("/webhooks/", {**HOOK, "url": url}), HTTPStatus.BAD_REQUEST, "invalid-request"
    )
    assert [error["field"] for error in body["errors"]] == ["url"]
    assert Subscriber.objects.count() == 1
    hook = Subscriber.objects.get()
    body = assert_problem(
        api.patch(f"/webhooks/{hook.pk}", {"url": url}), HTTPStatus.BAD_REQUEST, "invalid-request"
    )
    assert [error["field"] for error in body["errors"]] == ["url"]
    assert Subscriber.objects.get().url == HOOK["url"]
    assert len(_rows(api)) == 1


def test_a_private_receiver_is_allowed_only_when_asked_for(api):
    inside = {**HOOK, "url": "https://10.0.0.8/hooks"}
    assert_problem(api.post("/webhooks/", inside), HTTPStatus.BAD_REQUEST)
    allowed = api.post("/webhooks/", {**inside, "allow_private_network": True})
    assert allowed.status_code == HTTPStatus.CREATED, allowed.content
    assert allowed.json()["webhook"]["allow_private_network"] is True


def test_webhook_event_types_and_unknown_ids_are_problems(api):
    hook = api.post("/webhooks/", HOOK).json()["webhook"]
    for event_types in (["user.teleported"], []):
        body = assert_problem(
            api.post("/webhooks/", {**HOOK, "event_types": event_types}), HTTPStatus.BAD_REQUEST
        )
        assert body["errors"][0]["field"] == "event_types"
    body = assert_problem(
        api.patch(f"/webhooks/{hook['id']}", {"colour": "red"}), HTTPStatus.BAD_REQUEST
    )
    assert body["errors"] == [{"field": "colour", "message": "unknown field"}]
    for call in (
        lambda: api.get("/webhooks/424242"),
        lambda: api.patch("/webhooks/424242", {"name": "x"}),
        lambda: api.post("/webhooks/424242/rotate-secret"),
        lambda: api.delete("/webhooks/424242"),
    ):
        assert_problem(call(), HTTPStatus.NOT_FOUND, "not-found")
    assert len(_rows(api)) == 1


def test_webhooks_need_the_integrations_scope_and_the_audit_stream_the_audit_scope(api_with):
    full = api_with("admin:integrations", "admin:audit:read", name="Full")
    assert full.post("/webhooks/", HOOK).status_code == HTTPStatus.CREATED
    hook_id = Subscriber.objects.get().pk

    reader = api_with("admin:integrations:read", name="Reader")
    assert reader.get("/webhooks/").status_code == HTTPStatus.OK
    assert reader.get(f"/webhooks/{hook_id}").status_code == HTTPStatus.OK
    body = assert_problem(
        reader.post(f"/webhooks/{hook_id}/rotate-secret"),
        HTTPStatus.FORBIDDEN,
        "insufficient-scope",
    )
    assert "admin:integrations" in body["detail"]
    assert_problem(reader.delete(f"/webhooks/{hook_id}"), HTTPStatus.FORBIDDEN)

    others = api_with("admin:clients", "admin:audit", name="Others")
    response = others.get("/webhooks/")
    body = assert_problem(response, HTTPStatus.FORBIDDEN, "insufficient-scope")
    assert "admin:integrations:read" in body["detail"]
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]

    # Choosing what a receiver gets is reading the audit stream.
    blind = api_with("admin:integrations", name="Blind")
    body = assert_problem(blind.post("/webhooks/", HOOK), HTTPStatus.FORBIDDEN)
    assert "admin:audit:read" in body["detail"]
    assert_problem(
        blind.patch(f"/webhooks/{hook_id}", {"event_types": ["user.created"]}),
        HTTPStatus.FORBIDDEN,
    )
    assert blind.patch(f"/webhooks/{hook_id}", {"is_active": False}).status_code == HTTPStatus.OK
    assert Subscriber.objects.count() == 1


def test_a_webhook_body_too_large_or_not_json_is_a_problem(api):
    assert api.post("/webhooks/", HOOK).status_code == HTTPStatus.CREATED
    huge = {**HOOK, "name": "x" * (5 * 1024 * 1024)}
    assert_problem(api.post("/webhooks/", huge), HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    form = api.http.post(
        "/api/v1/webhooks/",
        "url=https://x.example.com/",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert_problem(form, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
    broken = api.http.post(
        "/api/v1/webhooks/",
        '{"url": ',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert_problem(broken, HTTPStatus.BAD_REQUEST, "invalid-request")
    assert Subscriber.objects.count() == 1


# --- SCIM tokens


def test_issuing_a_scim_token_shows_it_once_and_it_works(api, client):
    response = api.post("/scim-tokens/", {"name": "Entra ID", "expires_in_days": 90})
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    plain = body["token"]
    issued = body["scim_token"]
    assert issued["name"] == "Entra ID"
    assert issued["state"] == "active"
    assert (issued["read_only"], issued["users"], issued["groups"]) == (False, True, True)
    assert plain.startswith(issued["prefix"])
    assert issued["expires_at"] is not None
    stored = ScimToken.objects.get(pk=issued["id"])
    assert plain not in stored.token_hash
    assert find_token(plain) == stored
    # The SCIM client can use it.
    scim = client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert scim.status_code == HTTPStatus.OK, scim.content
    listed = api.get("/scim-tokens/")
    assert plain not in listed.content.decode()
    [item] = listed.json()["items"]
    assert item["last_used_at"] is not None
    assert item["created_by"] is None  # a service client is no person
    [row] = _rows(api)
    assert row.type == AuditEvent.Type.TOKENS_ISSUED
    assert row.extra["kind"] == "scim_token"
    assert row.extra["scim_token_id"] == stored.pk
    assert plain not in str(row.extra)


def test_a_read_only_users_only_token_is_limited_as_asked(api):
    response = api.post("/scim-tokens/", {"name": "HR reader", "read_only": True, "groups": False})
    assert response.status_code == HTTPStatus.CREATED, response.content
    stored = ScimToken.objects.get(name="HR reader")
    assert stored.read_only
    assert stored.may_manage_users
    assert not stored.may_manage_groups
    assert api.get(f"/scim-tokens/{stored.pk}").json()["groups"] is False


def test_revoking_a_scim_token_stops_it_and_is_audited_once(api, client):
    issued = api.post("/scim-tokens/", {"name": "Okta"}).json()
    token_id = issued["scim_token"]["id"]
    revoked = api.post(f"/scim-tokens/{token_id}/revoke")
    assert revoked.status_code == HTTPStatus.OK, revoked.content
    assert revoked.json()["state"] == "revoked"
    assert revoked.json()["revoked_at"] is not None
    assert find_token(issued["token"]) is None
    scim = client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {issued['token']}")
    assert scim.status_code == HTTPStatus.UNAUTHORIZED
    again = api.post(f"/scim-tokens/{token_id}/revoke")
    assert again.status_code == HTTPStatus.OK
    assert [row.type for row in _rows(api)] == [
        AuditEvent.Type.TOKENS_ISSUED,
        AuditEvent.Type.TOKEN_REVOKED,
    ]
    assert _rows(api)[1].extra["scim_token_id"] == token_id
    assert [item["id"] for item in api.get("/scim-tokens/?state=revoked").json()["items"]] == [
        token_id
    ]
    assert api.get("/scim-tokens/?state=live").json()["items"] == []


def test_scim_token_input_problems(api):
    assert api.post("/scim-tokens/", {"name": "Okta"}).status_code == HTTPStatus.CREATED
    body = assert_problem(api.post("/scim-tokens/", {"name": "Okta"}), HTTPStatus.BAD_REQUEST)
    assert body["errors"][0]["field"] == "name"
    body = assert_problem(api.post("/scim-tokens/", {"name": "  "}), HTTPStatus.BAD_REQUEST)
    assert body["errors"][0]["field"] == "name"
    assert_problem(
        api.post("/scim-tokens/", {"name": "None", "users": False, "groups": False}),
        HTTPStatus.BAD_REQUEST,
        "invalid-request",
    )
    body = assert_problem(
        api.post("/scim-tokens/", {"name": "Soon", "expires_in_days": 0}), HTTPStatus.BAD_REQUEST
    )
    assert body["errors"][0]["field"] == "expires_in_days"
    body = assert_problem(
        api.post("/scim-tokens/", {"name": "Raw", "token": "mine"}), HTTPStatus.BAD_REQUEST
    )
    assert body["errors"] == [{"field": "token", "message": "unknown field"}]
    assert_problem(api.get("/scim-tokens/?state=odd"), HTTPStatus.BAD_REQUEST)
    assert_problem(api.get("/scim-tokens/424242"), HTTPStatus.NOT_FOUND, "not-found")
    assert_problem(api.post("/scim-tokens/424242/revoke"), HTTPStatus.NOT_FOUND, "not-found")
    assert ScimToken.objects.count() == 1
    assert len(_rows(api)) == 1


def test_a_scim_token_that_acts_on_people_needs_the_users_scope(api_with):
    writer = api_with("admin:integrations", "admin:users", name="Writer")
    assert writer.post("/scim-tokens/", {"name": "Entra ID"}).status_code == HTTPStatus.CREATED
    reader = api_with("admin:integrations", "admin:users:read", name="Reader")
    body = assert_problem(
        reader.post("/scim-tokens/", {"name": "Okta"}), HTTPStatus.FORBIDDEN, "insufficient-scope"
    )
    assert "admin:users" in body["detail"]
    read_only = reader.post("/scim-tokens/", {"name": "HR reader", "read_only": True})
    assert read_only.status_code == HTTPStatus.CREATED, read_only.content
    alone = api_with("admin:integrations", name="Alone")
    assert_problem(
        alone.post("/scim-tokens/", {"name": "Sneaky", "read_only": True}), HTTPStatus.FORBIDDEN
    )
    assert alone.get("/scim-tokens/").status_code == HTTPStatus.OK
    assert sorted(ScimToken.objects.values_list("name", flat=True)) == ["Entra ID", "HR reader"]


# --- Provisioning targets


def web_app(client_id: str, *, actor=None) -> Client:
    client, _secret = client_services.register_client(
        actor=actor,
        kind=Client.Kind.WEB,
        name=client_id.capitalize(),
        client_id=client_id,
        redirect_uris=[f"https://{client_id}.example.com/callback"],
        scopes=["openid", "profile", "email"],
    )
    return client


@pytest.fixture
def wiki(admin_user, user) -> Client:
    """An app open to the people assigned to it; alice is."""
    client = web_app("wiki", actor=admin_user)
    client_services.set_access_policy(client=client, policy="assigned", actor=admin_user)
    client_services.assign(client=client, user=user, actor=admin_user)
    return client


def test_a_provisioning_target_is_created_read_and_replaced_with_a_write_only_token(api, wiki):
    created = api.call("PUT", "/provisioning-targets/wiki", TARGET)
    assert created.status_code == HTTPStatus.CREATED, created.content
    body = created.json()
    assert body["client_id"] == "wiki"
    assert body["token_set"] is True
    assert body["user_attributes"] == ["name", "emails"]
    assert TARGET["token"] not in created.content.decode()
    target = ScimTarget.objects.get(client=wiki)
    assert crypto.decrypt_token(target.token_encrypted) == TARGET["token"]
    read = api.get("/provisioning-targets/wiki")
    assert read.json() == body
    assert TARGET["token"] not in api.get("/provisioning-targets/").content.decode()

    # Replaced without a token: the stored one stays; what is left out takes its default.
    replaced = api.call(
        "PUT",
        "/provisioning-targets/wiki",
        {"base_url": "https://wiki.example.com/scim/v3", "deprovision": "delete"},
    )
    assert replaced.status_code == HTTPStatus.OK, replaced.content
    assert replaced.json()["user_attributes"] == ["name", "displayName", "emails"]
    assert replaced.json()["deprovision"] == "delete"
    target.refresh_from_db()
    assert crypto.decrypt_token(target.token_encrypted) == TARGET["token"]

    rows = _rows(api)
    assert [row.type for row in rows] == [AuditEvent.Type.PROVISIONING_CONFIGURED] * 2
    assert [row.client_repr for row in rows] == ["wiki", "wiki"]
    assert [(row.extra["created"], row.extra["token_changed"]) for row in rows] == [
        (True, True),
        (False, False),
    ]
    assert TARGET["token"] not in str([row.extra for row in rows])


def test_disabling_pauses_a_target_and_enabling_resumes_it(api, wiki):
    assert api.call("PUT", "/provisioning-targets/wiki", TARGET).status_code == HTTPStatus.CREATED
    disabled = api.post("/provisioning-targets/wiki/disable")
    assert disabled.status_code == HTTPStatus.OK, disabled.content
    assert disabled.json()["enabled"] is False
    assert api.get("/provisioning-targets/wiki/dry-run").json() == {"live": False, "changes": []}
    assert_problem(
        api.post("/provisioning-targets/wiki/sync"), HTTPStatus.CONFLICT, "target-disabled"
    )
    assert api.post("/provisioning-targets/wiki/disable").json()["enabled"] is False
    assert api.post("/provisioning-targets/wiki/enable").json()["enabled"] is True
    assert [row.extra["enabled"] for row in _rows(api)] == [True, False, True]


def test_the_dry_run_shows_what_a_sync_now_queues(api, wiki, user):
    assert api.call("PUT", "/provisioning-targets/wiki", TARGET).status_code == HTTPStatus.CREATED
    dry = api.get("/provisioning-targets/wiki/dry-run")
    assert dry.status_code == HTTPStatus.OK, dry.content
    [change] = dry.json()["changes"]
    assert dry.json()["live"] is True
    assert (change["username"], change["action"], change["remote_id"]) == ("alice", "create", None)
    assert change["resource"]["userName"] == "alice"
    assert change["resource"]["emails"][0]["value"] == "alice@example.com"
    assert not ProvisioningDelivery.objects.exists()  # the dry run sent and queued nothing

    synced = api.post("/provisioning-targets/wiki/sync")
    assert synced.status_code == HTTPStatus.OK, synced.content
    assert synced.json() == {"queued": 1}
    delivery = ProvisioningDelivery.objects.get()
    assert (delivery.user, delivery.reason) == (user, "sync_now")
    assert ScimTarget.objects.get(client=wiki).last_sync_at is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"base_url": "https://10.0.0.8/scim/v2"}, "base_url"),  # a private address
        ({"base_url": "http://wiki.example.com/scim/v2"}, "base_url"),  # not https
        ({"user_attributes": ["password"]}, "user_attributes"),
        ({"token": None}, "token"),  # the first time, a token is needed
        ({"deprovision": "shred"}, "deprovision"),
        ({"enabled": "sometimes"}, "enabled"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_target_the_rules_refuse_is_a_400_problem_naming_the_field(api, wiki, fields, field):
    web_app("tickets")
    assert api.call("PUT", "/provisioning-targets/tickets", TARGET).status_code == 201
    body = assert_problem(
        api.call("PUT", "/provisioning-targets/wiki", {**TARGET, **fields}),
        HTTPStatus.BAD_REQUEST,
        "invalid-request",
    )
    assert field in [error["field"] for error in body["errors"]]
    assert not ScimTarget.objects.filter(client=wiki).exists()
    assert len(_rows(api)) == 1


def test_unknown_apps_service_clients_and_apps_without_a_target(api, wiki):
    assert api.call("PUT", "/provisioning-targets/wiki", TARGET).status_code == HTTPStatus.CREATED
    for call in (
        lambda: api.get("/provisioning-targets/nope"),
        lambda: api.call("PUT", "/provisioning-targets/nope", TARGET),
        lambda: api.post("/provisioning-targets/nope/sync"),
        lambda: api.get("/provisioning-targets/nope/dry-run"),
    ):
        body = assert_problem(call(), HTTPStatus.NOT_FOUND, "not-found")
        assert "nope" in body["detail"]
    web_app("bare")
    body = assert_problem(api.get("/provisioning-targets/bare"), HTTPStatus.NOT_FOUND)
    assert "no provisioning target" in body["detail"]
    assert_problem(api.post("/provisioning-targets/bare/enable"), HTTPStatus.NOT_FOUND)
    assert_problem(
        api.call("PUT", f"/provisioning-targets/{api.client.client_id}", TARGET),
        HTTPStatus.BAD_REQUEST,
    )
    assert ScimTarget.objects.count() == 1


def test_provisioning_targets_need_their_scopes(api_with, wiki):
    writer = api_with("admin:integrations", "admin:users:read", name="Writer")
    put = writer.call("PUT", "/provisioning-targets/wiki", TARGET)
    assert put.status_code == HTTPStatus.CREATED, put.content
    reader = api_with("admin:integrations:read", name="Reader")
    assert reader.get("/provisioning-targets/wiki").status_code == HTTPStatus.OK
    assert reader.get("/provisioning-targets/wiki/dry-run").status_code == HTTPStatus.OK
    for call in (
        lambda: reader.post("/provisioning-targets/wiki/sync"),
        lambda: reader.post("/provisioning-targets/wiki/disable"),
        lambda: reader.call("PUT", "/provisioning-targets/wiki", TARGET),
    ):
        assert_problem(call(), HTTPStatus.FORBIDDEN, "insufficient-scope")
    # Sending people's profiles to an app is reading people.
    blind = api_with("admin:integrations", name="Blind")
    body = assert_problem(
        blind.call("PUT", "/provisioning-targets/wiki", TARGET), HTTPStatus.FORBIDDEN
    )
    assert "admin:users:read" in body["detail"]
    assert blind.post("/provisioning-targets/wiki/disable").status_code == HTTPStatus.OK
    assert_problem(
        api_with("admin:clients", name="Clients").get("/provisioning-targets/"),
        HTTPStatus.FORBIDDEN,
    )


# --- Paging


def test_each_listing_pages_by_its_own_signed_cursor(api, wiki):
    for number in range(3):
        assert api.post("/webhooks/", {**HOOK, "name": f"Hook {number}"}).status_code == 201
        assert api.post("/scim-tokens/", {"name": f"Token {number}"}).status_code == 201
    seen = []
    page = api.get("/webhooks/?limit=2").json()
    seen += [item["name"] for item in page["items"]]
    page = api.get(f"/webhooks/?limit=2&cursor={page['next_cursor']}").json()
    seen += [item["name"] for item in page["items"]]
    assert seen == ["Hook 2", "Hook 1", "Hook 0"]
    assert page["next_cursor"] is None
    first = api.get("/scim-tokens/?limit=1").json()
    assert [item["name"] for item in first["items"]] == ["Token 2"]
    # A cursor of one listing is no position in another, and an edited one is none at all.
    for path in (
        f"/webhooks/?cursor={first['next_cursor']}",
        f"/provisioning-targets/?cursor={first['next_cursor']}",
        f"/scim-tokens/?cursor={first['next_cursor']}x",
    ):
        assert_problem(api.get(path), HTTPStatus.BAD_REQUEST, "invalid-cursor")
    assert_problem(api.get("/scim-tokens/?limit=0"), HTTPStatus.BAD_REQUEST)
