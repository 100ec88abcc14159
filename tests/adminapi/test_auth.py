"""Who may call the admin API: service clients' bearer tokens with the admin scopes only."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from oauth_clients import services
from oauth_clients.client_cache import invalidate_clients
from oauth_clients.models import AccessToken, Client
from oauth_clients.oidc.tokens import token_checksum
from tests.adminapi.conftest import Api, assert_problem, register_service, token_for
from tests.oidc.conftest import make_client, post_form

pytestmark = pytest.mark.django_db


@pytest.mark.spec("RFC 6750", "3")
def test_a_request_without_a_token_is_a_401_problem(api, client):
    assert api.get("/users/").status_code == HTTPStatus.OK
    response = client.get("/api/v1/users/")
    assert_problem(response, HTTPStatus.UNAUTHORIZED, "invalid-token")
    assert response["WWW-Authenticate"] == 'Bearer realm="admin-api"'
    refused = client.get("/api/v1/users/", HTTP_AUTHORIZATION="Bearer forged")
    assert_problem(refused, HTTPStatus.UNAUTHORIZED, "invalid-token")
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]


def test_a_browser_session_cookie_is_ignored(api, client, admin_user):
    assert api.get("/users/").status_code == HTTPStatus.OK
    client.force_login(admin_user)
    assert_problem(client.get("/api/v1/users/"), HTTPStatus.UNAUTHORIZED)
    assert_problem(
        client.post("/api/v1/groups/", {"name": "x"}, content_type="application/json"),
        HTTPStatus.UNAUTHORIZED,
    )


@pytest.mark.spec("RFC 6750", "3.1")
def test_an_unknown_expired_or_revoked_token_is_refused(api, client):
    assert api.get("/users/").status_code == HTTPStatus.OK
    unknown = Api(client, "not-a-token", api.client)
    assert_problem(unknown.get("/users/"), HTTPStatus.UNAUTHORIZED, "invalid-token")
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert_problem(api.get("/users/"), HTTPStatus.UNAUTHORIZED, "invalid-token")
    AccessToken.objects.all().delete()
    assert_problem(api.get("/users/"), HTTPStatus.UNAUTHORIZED, "invalid-token")


def test_a_token_in_the_query_string_is_refused(api, client):
    assert api.get("/users/").status_code == HTTPStatus.OK
    response = client.get(f"/api/v1/users/?access_token={api.token}")
    assert_problem(response, HTTPStatus.UNAUTHORIZED)


def test_a_disabled_service_clients_token_is_refused(api, api_with):
    assert api.get("/users/").status_code == HTTPStatus.OK
    # Disabling revokes the tokens; even a token row that survived is refused (is_usable).
    Client.objects.filter(pk=api.client.pk).update(is_active=False)
    invalidate_clients()
    assert_problem(api.get("/users/"), HTTPStatus.UNAUTHORIZED, "invalid-token")
    other = api_with("admin:users", name="Other")
    assert other.get("/users/").status_code == HTTPStatus.OK
    services.disable_client(client=other.client, actor=None)
    assert_problem(other.get("/users/"), HTTPStatus.UNAUTHORIZED, "invalid-token")


def test_a_token_without_the_areas_scope_is_a_403_problem(api_with):
    clients_only = api_with("admin:clients")
    assert clients_only.get("/clients/").status_code == HTTPStatus.OK
    response = clients_only.get("/users/")
    body = assert_problem(response, HTTPStatus.FORBIDDEN, "insufficient-scope")
    assert "admin:users:read" in body["detail"]
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert_problem(clients_only.get("/audit-events/"), HTTPStatus.FORBIDDEN, "insufficient-scope")


def test_a_read_scope_reads_and_never_writes(api_with):
    reader = api_with("admin:users:read")
    assert reader.get("/users/").status_code == HTTPStatus.OK
    assert reader.get("/groups/").status_code == HTTPStatus.OK
    body = assert_problem(
        reader.post("/groups/", {"name": "Sales"}), HTTPStatus.FORBIDDEN, "insufficient-scope"
    )
    assert "admin:users." in body["detail"]


def test_a_token_asking_for_fewer_scopes_gets_only_those(client):
    service, secret = register_service("admin:users", "admin:clients")
    narrow = Api(client, token_for(client, service, secret, ("admin:clients",)), service)
    assert narrow.get("/clients/").status_code == HTTPStatus.OK
    assert_problem(narrow.get("/users/"), HTTPStatus.FORBIDDEN, "insufficient-scope")


def test_admin_scopes_are_for_service_clients_only(db):
    client, _secret = register_service("admin:users", "admin:superusers")
    assert client.allowed_scopes == "admin:superusers admin:users"
    for kind in ("web", "spa", "native"):
        with pytest.raises(ValidationError) as refused:
            services.register_client(
                actor=None,
                kind=kind,
                name="Wiki",
                redirect_uris=["https://wiki.example.com/cb"],
                scopes=["openid", "admin:users"],
            )
        assert "machine-to-machine services only" in str(refused.value.message_dict)


def test_a_sign_in_apps_token_is_never_an_admin_token(client, api):
    """Even a token row of a web app that claimed an admin scope (it cannot be registered with
    one) is refused: only a service client's client-credentials token counts."""
    assert api.get("/users/").status_code == HTTPStatus.OK
    web = make_client(client_id="wiki", kind=Client.Kind.WEB)
    AccessToken.objects.create(
        application=web,
        user=None,
        token_checksum=token_checksum("made-up"),
        expires=timezone.now() + timedelta(minutes=5),
        scope="admin:users",
    )
    assert_problem(Api(client, "made-up", web).get("/users/"), HTTPStatus.UNAUTHORIZED)


def test_the_clients_command_registers_an_admin_service_client(db, capsys, client):
    call_command(
        "clients",
        "create",
        "--kind",
        "service",
        "--name",
        "Terraform",
        "--scope",
        "admin:users",
        "--scope",
        "admin:clients",
        "--scope",
        "admin:audit",
        "--json",
    )
    import json

    created = json.loads(capsys.readouterr().out)
    service = Client.objects.get(client_id=created["client_id"])
    assert service.allowed_scopes == "admin:audit admin:clients admin:users"
    response = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "admin:users admin:audit"},
        HTTP_AUTHORIZATION=_basic(created),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["scope"] == "admin:users admin:audit"
    with pytest.raises(CommandError):
        call_command(
            "clients",
            "create",
            "--kind",
            "web",
            "--name",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example.com/cb",
            "--scope",
            "openid",
            "--scope",
            "admin:users",
        )


def _basic(created: dict[str, str]) -> str:
    from tests.oidc.conftest import basic_auth

    return basic_auth(created["client_id"], created["client_secret"])


def test_calls_beyond_the_rate_limit_are_a_429_problem(api, settings):
    settings.IDP_API_RATE_LIMIT = "2/m"
    assert api.get("/users/").status_code == HTTPStatus.OK
    assert api.get("/users/").status_code == HTTPStatus.OK
    response = api.get("/users/")
    assert_problem(response, HTTPStatus.TOO_MANY_REQUESTS, "rate-limited")
    assert int(response["Retry-After"]) > 0
