"""A sweep of hostile requests over every operation the admin API's OpenAPI document lists
(tests/hostile.py): bodies built from each operation's schema with hostile values, ids that name
nothing, query parameters out of range, bodies that are no JSON. Every refusal is an RFC 9457
problem; none is a 500."""

from __future__ import annotations

import json
import random
from http import HTTPStatus

from tests.hostile import HOSTILE_JSON, Sweep

REQUESTS = 300
PLAUSIBLE = ("sweep", "https://app.example.com/cb", ["openid"], "web", "service", "admin:users")
QUERY_NAMES = ("limit", "offset", "cursor", "q", "since", "type", "is_active", "actor")
QUERY_VALUES = ("-1", "0", "x", "9" * 30, "2026-99-99", "%ff", "%00", "")


def body_for(r: random.Random, document: dict, operation: dict):
    """A JSON body with some of the operation's properties, each a hostile or plausible value."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    name = content["schema"].get("$ref", "").rsplit("/", 1)[-1]
    properties = document["components"]["schemas"].get(name, {}).get("properties", {})
    return {prop: r.choice([*HOSTILE_JSON, *PLAUSIBLE]) for prop in properties if r.random() < 0.7}


def test_hostile_admin_api_requests_get_problems_never_a_500(superuser_api, client):
    document = client.get("/api/v1/schema/").json()
    user = superuser_api.post("/users/", {"username": "sweep", "email": "sweep@example.com"})
    assert user.status_code == HTTPStatus.CREATED, user.content
    group = superuser_api.post("/groups/", {"name": "sweepers"})
    assert group.status_code == HTTPStatus.CREATED, group.content
    ids = {
        "user_id": [user.json()["id"], "sweep", "0", "x" * 300, "%00", "-1"],
        "group_id": [group.json()["id"], "sweepers", "0", "x", "9" * 25],
        "client_id": [superuser_api.client.client_id, "nope", "x" * 300],
        "webhook_id": ["1", "0", "x"],
        "username": ["sweep", "x"],
        "token_id": ["1", "x"],
    }
    operations = [
        (path.removeprefix("/api/v1"), method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    r = random.Random("admin api")
    sweep = Sweep("admin API")
    for _ in range(REQUESTS):
        path, method, operation = r.choice(operations)
        for name, values in ids.items():
            path = path.replace("{" + name + "}", str(r.choice(values)))
        if r.random() < 0.5:
            pairs = [(r.choice(QUERY_NAMES), r.choice(QUERY_VALUES)) for _ in range(3)]
            path += "?" + "&".join(f"{name}={value}" for name, value in pairs)
        body = body_for(r, document, operation)
        kwargs = {}
        if body is not None:
            raw = json.dumps(body) if r.random() < 0.9 else r.choice(["{", "null", "\xff", "[]"])
            content_type = r.choice(["application/json"] * 5 + ["text/plain"])
            kwargs = {"data": raw, "content_type": content_type}
        sent = (method.upper(), path, body)
        bearer = f"Bearer {superuser_api.token}"
        call = getattr(superuser_api.http, method)
        response = sweep.send(sent, call, f"/api/v1{path}", HTTP_AUTHORIZATION=bearer, **kwargs)
        if not sweep.check_status(sent, response):
            continue
        is_problem = response.get("Content-Type") == "application/problem+json"
        if response.status_code >= HTTPStatus.BAD_REQUEST and not is_problem:
            sweep.record("an error that is not an RFC 9457 problem", sent, response)
    sweep.assert_clean()
