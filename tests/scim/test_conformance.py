"""Acceptance: an independent SCIM conformance checker, scim2-tester (pinned in
requirements-dev.txt), run against a live server over HTTP passes every check it runs on the
discovery endpoints, Users and Groups."""

from __future__ import annotations

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from scim.services import issue_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.spec("RFC 7644", "3")]

FAILED = {Status.ERROR, Status.CRITICAL, Status.DEVIATION}


def test_scim2_tester_passes_every_check_on_users_and_groups(live_server, admin_user, settings):
    # The checker sends random passwords on every user it writes: Django's validators would
    # refuse some of them (similar to the random name), and Argon2 would cost ~20 ms each.
    settings.AUTH_PASSWORD_VALIDATORS = []
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _token, plain = issue_token(name="scim2-tester")
    with Client(
        base_url=f"{live_server.url.replace('localhost', '127.0.0.1')}/scim/v2",
        headers={"Authorization": f"Bearer {plain}"},
        timeout=30,
    ) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client, resource_types=["User", "Group"])
    ran = [result for result in results if result.status != Status.SKIPPED]
    failed = [
        (result.resource_type, result.title, result.status.name, result.reason)
        for result in ran
        if result.status in FAILED
    ]
    for row in failed:
        print(row)
    assert failed == []
    assert len(ran) > 40
    checked = {result.resource_type for result in ran}
    assert {"User", "Group"} <= checked
