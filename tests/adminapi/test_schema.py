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
        url = re.sub(r"\{user_id\}|\{group_id\}", "1", path)
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


def test_answers_fit_the_document(document, api, user):
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
    check("POST", "/groups/", "/groups/", {"nom": "x"}, HTTPStatus.BAD_REQUEST)
