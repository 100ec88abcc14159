"""A sweep of hostile SCIM requests (tests/hostile.py): mutated Users and Groups, PATCH operations
of every shape, filters that do not parse, paging and attribute parameters out of range, bodies
that are no JSON. Every refusal is RFC 7644 §3.12's error document; none is a 500 (a 501 for
what this server does not offer is SCIM's own answer)."""

from __future__ import annotations

import json
import random
from http import HTTPStatus

from tests.hostile import HOSTILE_JSON, Sweep, mutate_json
from tests.scim.conftest import ERROR_SCHEMA, GROUP_SCHEMA, PATCH_SCHEMA, new_user

REQUESTS = 300
SCIM_KEYS = (
    "id",
    "meta",
    "schemas",
    "members",
    "groups",
    "password",
    "roles",
    "emails",
    "active",
    "userName",
    "displayName",
    "externalId",
)
FILTERS = (
    'userName eq "bjensen"',
    "userName eq",
    "eq eq eq",
    "(",
    'userName eq "a" and (',
    'emails[type eq "work"].value co "x"',
    'emails[type eq "work" and value co "@"]',
    'meta.lastModified gt "notadate"',
    "name.familyName sw 5",
    'active eq "true"',
    "x" * 5000,
    "not (userName pr)",
    'userName eq "\\"',
    'userName eq "a\x00"',
    '"unterminated',
    'id eq "999999999999999999999"',
    "displayName eq null",
    'members[value eq "x"]',
    'title eq "a" or ' * 50 + "title pr",
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"',
)
PATCH_PATHS = (
    None,
    "active",
    "emails",
    'emails[type eq "work"].value',
    "members",
    'members[value eq "1"]',
    "name.givenName",
    "[",
    "x.y.z",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    5,
)


def patch_body(r: random.Random) -> dict:
    operations = []
    for _ in range(r.randint(0, 4)):
        operation = {
            "op": r.choice(["add", "replace", "remove", "Replace", "move", "", 5]),
            "path": r.choice(PATCH_PATHS),
            "value": r.choice([*HOSTILE_JSON, {"active": False}, [{"value": "1"}]]),
        }
        operations.append(mutate_json(r, operation) if r.random() < 0.3 else operation)
    body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
    return mutate_json(r, body) if r.random() < 0.2 else body


def is_scim_error(response) -> bool:
    if not response["Content-Type"].startswith("application/scim+json"):
        return False
    try:
        return ERROR_SCHEMA in json.loads(response.content).get("schemas", [])
    except (ValueError, AttributeError):
        return False


def test_hostile_scim_requests_get_scim_errors_never_a_500(scim):
    created = scim.post("Users", new_user("sweep"))
    assert created.status_code == HTTPStatus.CREATED, created.content
    user_id = created.json()["id"]
    group = {"schemas": [GROUP_SCHEMA], "displayName": "Sweepers", "members": [{"value": user_id}]}
    grouped = scim.post("Groups", group)
    assert grouped.status_code == HTTPStatus.CREATED, grouped.content
    targets = [user_id, grouped.json()["id"], "999999", "abc", "%00", "1" * 40]
    r = random.Random("scim")
    sweep = Sweep("SCIM")
    for n in range(REQUESTS):
        kind = r.choice(["Users", "Groups"])
        path = f"{kind}/{r.choice(targets)}"
        action = r.choice(["create", "read", "list", "patch", "replace", "raw"])
        if action == "create":
            base = new_user(f"u{n}") if kind == "Users" else {**group, "displayName": f"g{n}"}
            sent = ("POST", kind, mutate_json(r, base, keys=SCIM_KEYS))
            response = sweep.send(sent, scim.post, kind, sent[2])
        elif action == "read":
            sent = ("GET", path, r.choice(["", "userName", "emails.value", "[["]))
            response = sweep.send(sent, scim.get, path, attributes=sent[2])
        elif action == "list":
            params = {
                "filter": r.choice(FILTERS),
                "startIndex": r.choice(["1", "0", "-5", "x", "1e9", "9" * 30]),
                "count": r.choice(["10", "-1", "0", "x", "100000"]),
                "attributes": r.choice(["", "userName", "[["]),
                "excludedAttributes": r.choice(["", "emails", "]"]),
            }
            params = {name: value for name, value in params.items() if r.random() < 0.6}
            sent = ("GET", kind, params)
            response = sweep.send(sent, scim.get, kind, **params)
        elif action == "patch":
            sent = ("PATCH", path, patch_body(r))
            response = sweep.send(sent, scim.send, "patch", path, sent[2])
        elif action == "replace":
            base = new_user("sweep") if kind == "Users" else group
            sent = ("PUT", path, mutate_json(r, base, keys=SCIM_KEYS))
            response = sweep.send(sent, scim.put, path, sent[2])
        else:
            search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
            searching = json.dumps({**search, "filter": r.choice(FILTERS)}).encode()
            raw = r.choice([b"", b"{", b"[]", b"null", b"\xff\xfe", b"1" * 100_000, searching])
            where = r.choice(["Users", "Groups", "Bulk", "Me", "Schemas", ".search"])
            sent = (r.choice(["post", "put", "patch"]), where, raw[:100])
            response = sweep.send(sent, scim.send, sent[0], where, raw)
        if not sweep.check_status(sent, response, allowed_5xx=(HTTPStatus.NOT_IMPLEMENTED,)):
            continue
        if response.status_code >= HTTPStatus.BAD_REQUEST and not is_scim_error(response):
            sweep.record("an error that is not SCIM's error document", sent, response)
    sweep.assert_clean()
