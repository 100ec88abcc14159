"""Service clients with admin scopes and their tokens, obtained from the real token endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from oauth_clients import services
from oauth_clients.models import Client
from tests.oidc.conftest import basic_auth, post_form

ALL_SCOPES = ("admin:users", "admin:clients", "admin:audit", "admin:integrations")


def register_service(*scopes: str, name: str = "Terraform") -> tuple[Client, str]:
    return services.register_client(actor=None, kind="service", name=name, scopes=list(scopes))


def token_for(http: HttpClient, client: Client, secret: str, scopes: tuple[str, ...]) -> str:
    response = post_form(
        http,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials", "scope": " ".join(scopes)},
        HTTP_AUTHORIZATION=basic_auth(client.client_id, secret),
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return str(response.json()["access_token"])


class Api:
    """The Django test client speaking JSON to /api/v1/ with one bearer token."""

    def __init__(self, http: HttpClient, token: str, client: Client) -> None:
        self.http = http
        self.token = token
        self.client = client

    @property
    def actor(self) -> str:
        return f"service:{self.client.client_id}"

    def call(self, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}", **extra}
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs = {"data": json.dumps(body), "content_type": "application/json"}
        return getattr(self.http, method.lower())(f"/api/v1{path}", **kwargs, **headers)

    def get(self, path: str, **extra: Any) -> Any:
        return self.call("GET", path, **extra)

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self.call("POST", path, {} if body is None else body, **extra)

    def patch(self, path: str, body: Any, **extra: Any) -> Any:
        return self.call("PATCH", path, body, **extra)

    def delete(self, path: str, **extra: Any) -> Any:
        return self.call("DELETE", path, **extra)


@pytest.fixture
def api_with(db, client) -> Callable[..., Api]:
    """An Api whose token carries exactly `scopes` (its client is allowed them)."""

    def make(*scopes: str, name: str = "Terraform") -> Api:
        service, secret = register_service(*scopes, name=name)
        return Api(client, token_for(client, service, secret, scopes), service)

    return make


@pytest.fixture
def api(api_with) -> Api:
    return api_with(*ALL_SCOPES)


@pytest.fixture
def superuser_api(api_with) -> Api:
    return api_with(*ALL_SCOPES, "admin:superusers", name="Break-glass automation")


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem of `status` (and `type` urn:idp:api:problem:<code>)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == status
    assert body["title"]
    if code is not None:
        assert body["type"] == f"urn:idp:api:problem:{code}"
    return body
