"""The OpenAPI 3.1 document at /api/v1/schema/: valid, and what the API serves."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

from tests.adminapi.conftest import assert_problem
from tests.adminapi.openapi import validate_answer

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/v1/schema/")
    assert response.status_code == HTTPStatus.OK
    return response.json()


@pytest.mark.spec("OpenAPI 3.1", "4.8")
def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert list(schemes.values()) == [{"type": "http", "scheme": "bearer"}]


def _served_paths() -> set[str]:
    """Every route the URL map serves under /api/v1/, as OpenAPI path templates."""
    found: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern) and (prefix + route).startswith("api/v1/"):
                found.append("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + route))

    walk(get_resolver().url_patterns, "")
    # The prefix (answered 404), the catch-all 404 and the document itself are no operations.
    return {
        path for path in found if "(?P" not in path and path not in ("/api/v1/", "/api/v1/schema/")
    }


def test_the_document_lists_exactly_the_routes_and_methods_served(document, api):
    served = _served_paths()
    assert served == set(document["paths"])
    for path in served:
        # A concrete URL for the template; the 405 answer's Allow header says what is served.
        url = re.sub(r"\{(user|group|webhook|token)_id\}", "1", path)
        url = url.replace("{client_id}", "x").replace("{username}", "x")
        response = api.http.generic("TRACE", url, HTTP_AUTHORIZATION=f"Bearer {api.token}")
        assert_problem(response, HTTPStatus.METHOD_NOT_ALLOWED)
        allowed = {method.strip().lower() for method in response["Allow"].split(",")}
        assert allowed == set(document["paths"][path]) & HTTP_METHODS, path


def test_the_prefix_itself_is_a_404_problem(client):
    assert client.get("/api/v1/schema/").status_code == HTTPStatus.OK
    assert_problem(client.get("/api/v1/"), HTTPStatus.NOT_FOUND, "not-found")


def test_every_operation_declares_its_problems_as_problem_json(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"ServiceClientAuth": []}], (path, method)
            for status in ("400", "401", "403", "405", "429"):
                content = operation["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], (path, method, status)


def test_answers_fit_the_document(document, api, user, monkeypatch):
    def check(method: str, path: str, template: str, body=None, status=HTTPStatus.OK):
        response = api.call(method, path, body)
        assert response.status_code == status, response.content
        validate_answer(
            document,
            path=f"/api/v1{template}",
            method=method,
            status=status,
            content_type=response["Content-Type"],
            body=response.json() if response.content else None,
        )

    check("GET", "/users/", "/users/")
    check("GET", f"/users/{user.pk}", "/users/{user_id}")
    check("POST", "/groups/", "/groups/", {"name": "Sales"}, HTTPStatus.CREATED)
    check("GET", "/groups/", "/groups/")
    check("GET", "/clients/", "/clients/")
    check("GET", "/clients/export", "/clients/export")
    check("GET", "/audit-events/", "/audit-events/")
    check("GET", "/users/0", "/users/{user_id}", status=HTTPStatus.NOT_FOUND)
    check_integrations(check, monkeypatch)
    check("POST", "/groups/", "/groups/", {"nom": "x"}, HTTPStatus.BAD_REQUEST)


def check_integrations(check, monkeypatch) -> None:
    """The integrations' answers, secrets shown once included."""
    from oauth_clients import uri_rules
    from oauth_clients.services import register_client

    monkeypatch.setattr(uri_rules, "resolve_host", lambda host: ["93.184.216.34"])
    hook = {"url": "https://siem.example.com/hooks", "event_types": ["user.locked"]}
    check("POST", "/webhooks/", "/webhooks/", hook, HTTPStatus.CREATED)
    check("GET", "/webhooks/", "/webhooks/")
    check("POST", "/webhooks/", "/webhooks/", {**hook, "url": "x"}, HTTPStatus.BAD_REQUEST)
    check("GET", "/webhooks/0", "/webhooks/{webhook_id}", status=HTTPStatus.NOT_FOUND)
    check("POST", "/scim-tokens/", "/scim-tokens/", {"name": "Okta"}, HTTPStatus.CREATED)
    check("GET", "/scim-tokens/", "/scim-tokens/")
    register_client(
        actor=None,
        kind="web",
        name="Wiki",
        client_id="wiki",
        redirect_uris=["https://wiki.example.com/callback"],
    )
    target = {"base_url": "https://wiki.example.com/scim/v2", "token": "t" * 30}
    path = "/provisioning-targets/{client_id}"
    check("PUT", "/provisioning-targets/wiki", path, target, HTTPStatus.CREATED)
    check("PUT", "/provisioning-targets/wiki", path, {**target, "token": None})
    check("GET", "/provisioning-targets/", "/provisioning-targets/")
    check("GET", "/provisioning-targets/wiki/dry-run", f"{path}/dry-run")
    check("POST", "/provisioning-targets/wiki/sync", f"{path}/sync", {})
