"""The admin API's acceptance: a plain HTTP client scripts the IdP against a live server.

With httpx only (no Django test client): a token by client credentials, an app registered, a
user and a group created, the app assigned to the group, its secret rotated, and the audit
trail of all of it read back through the API. Every answer is checked against the OpenAPI
document the server serves.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from tests.adminapi.openapi import validate_answer


@pytest.mark.spec("RFC 6749", "4.4")
def test_a_script_registers_an_app_creates_people_assigns_and_reads_the_trail(live_server, capsys):
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
    service = json.loads(capsys.readouterr().out)

    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        token = http.post(
            "/o/token/",
            data={
                "grant_type": "client_credentials",
                "scope": "admin:users admin:clients admin:audit",
            },
            auth=(service["client_id"], service["client_secret"]),
        )
        assert token.status_code == HTTPStatus.OK, token.text
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        document = http.get("/api/v1/schema/").json()

        def call(method: str, path: str, template: str, body: Any = None) -> Any:
            response = http.request(method, f"/api/v1{path}", json=body)
            assert response.status_code < 300, response.text
            validate_answer(
                document,
                path=f"/api/v1{template}",
                method=method,
                status=response.status_code,
                content_type=response.headers["content-type"],
                body=response.json(),
            )
            return response.json()

        app = call(
            "POST",
            "/clients/",
            "/clients/",
            {
                "kind": "web",
                "name": "Wiki",
                "client_id": "wiki",
                "redirect_uris": ["https://wiki.example.com/callback"],
            },
        )
        assert app["client_secret"]
        user = call(
            "POST",
            "/users/",
            "/users/",
            {
                "username": "grace",
                "email": "grace@example.com",
                "password": "a long passphrase 1843",
            },
        )
        group = call("POST", "/groups/", "/groups/", {"name": "Engineering"})
        members = call(
            "POST",
            f"/groups/{group['id']}/members",
            "/groups/{group_id}/members",
            {"usernames": ["grace"]},
        )
        assert members == {"usernames": ["grace"]}
        call("PATCH", "/clients/wiki", "/clients/{client_id}", {"access_policy": "assigned"})
        assigned = call(
            "POST",
            "/clients/wiki/assignments",
            "/clients/{client_id}/assignments",
            {"group": "Engineering"},
        )
        assert assigned["assigned_groups"] == ["Engineering"]
        rotated = call(
            "POST",
            "/clients/wiki/rotate-secret",
            "/clients/{client_id}/rotate-secret",
            {"grace_seconds": 600},
        )
        assert rotated["client_secret"] != app["client_secret"]

        actor = f"service:{service['client_id']}"
        trail, cursor = [], None
        while True:
            query = {"actor": actor, "limit": 3, **({"cursor": cursor} if cursor else {})}
            response = http.get("/api/v1/audit-events/", params=query)
            assert response.status_code == HTTPStatus.OK, response.text
            page = response.json()
            validate_answer(
                document,
                path="/api/v1/audit-events/",
                method="GET",
                status=HTTPStatus.OK,
                content_type=response.headers["content-type"],
                body=page,
            )
            trail += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break

    happened = [(event["type"], event["subject"], event["client"]) for event in reversed(trail)]
    assert happened == [
        ("client.created", "", "wiki"),
        ("user.created", "grace", ""),
        ("group.created", "", ""),
        ("group.member_added", "grace", ""),
        ("client.changed", "", "wiki"),
        ("client.changed", "", "wiki"),
        ("client.secret_rotated", "", "wiki"),
    ]
    assert trail[-3]["extra"]["group"] == "Engineering"
    assert {event["extra"]["actor_client_id"] for event in trail} == {service["client_id"]}
    assert user["id"]
    assert all(event["actor"] == actor for event in trail)
