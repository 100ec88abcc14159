"""SCIM fixtures: tokens issued through the service, and a client that sends SCIM JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scim.services import issue_token

SCIM = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class ScimClient:
    """Django's test client speaking SCIM with one bearer token."""

    def __init__(self, client: Any, token: str, token_row: Any = None) -> None:
        self.client = client
        self.token = token
        self.token_row = token_row

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(f"/scim/v2/{path}", params, headers=self._headers(headers))

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return getattr(self.client, method)(
            f"/scim/v2/{path}",
            data=data if body is not None else "",
            content_type=SCIM,
            headers=self._headers(headers),
        )

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        return self.send("post", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Any:
        return self.send("put", path, body, **kw)

    def patch(self, path: str, operations: list[dict[str, Any]], **kw: Any) -> Any:
        return self.send("patch", path, {"schemas": [PATCH_SCHEMA], "Operations": operations}, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.send("delete", path, **kw)


@pytest.fixture
def scim_token(db):
    token, plain = issue_token(name="Okta")
    return token, plain


@pytest.fixture
def scim(client, scim_token) -> ScimClient:
    return ScimClient(client, scim_token[1], scim_token[0])


def new_user(username: str = "bjensen", **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": username,
        "externalId": f"ext-{username}",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": f"{username}@example.com", "type": "work", "primary": True}],
        "active": True,
        "title": "Engineer",
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"},
        **extra,
    }


def assert_scim_error(response: Any, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type
    return body
