"""SCIM tokens: issued in the admin (shown once) and by `manage.py scim_token`, stored hashed,
listed with their last use, revoked; each issue and revocation audited."""

from __future__ import annotations

from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from scim.models import ScimToken
from scim.tokens import hash_token
from tests.scim.conftest import ScimClient

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("scim_token", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_issues_a_token_once_stored_only_hashed(client):
    plain = run("create", "--name", "Entra ID", "--read-only", "--expires", "30").strip()
    token = ScimToken.objects.get(name="Entra ID")
    assert plain.startswith("scim_")
    assert len(plain) > 40
    assert token.token_hash == hash_token(plain)
    assert plain not in token.token_hash
    assert token.read_only
    assert token.expires_at is not None
    assert ScimClient(client, plain).get("Users").status_code == HTTPStatus.OK
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKENS_ISSUED)
    assert event.extra["scim_token"] == "Entra ID"
    assert plain not in str(event.extra)
    listing = run("list")
    assert "Entra ID" in listing
    assert "read-only users+groups" in listing
    assert plain not in listing
    assert "last used 20" in listing


def test_the_command_revokes_a_token_and_refuses_bad_input(client):
    plain = run("create", "--name", "Okta").strip()
    assert "revoked" in run("revoke", "Okta")
    assert ScimClient(client, plain).get("Users").status_code == HTTPStatus.UNAUTHORIZED
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REVOKED).count() == 1
    with pytest.raises(CommandError, match="already revoked"):
        run("revoke", "Okta")
    with pytest.raises(CommandError, match="No SCIM token"):
        run("revoke", "Nobody")
    with pytest.raises(CommandError, match="already exists"):
        run("create", "--name", "Okta")
    with pytest.raises(CommandError, match="at least 1"):
        run("create", "--name", "Other", "--expires", "0")


def test_the_admin_issues_a_token_and_shows_it_only_once(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/admin/scim/scimtoken/add/",
        {"name": "Okta", "may_manage_users": "on", "may_manage_groups": "on"},
    )
    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    token = ScimToken.objects.get(name="Okta")
    page = client.get(response["Location"])
    plain = page.content.decode().split('<code id="scim-token">')[1].split("</code>")[0]
    assert token.token_hash == hash_token(plain)
    assert "no-store" in page["Cache-Control"]
    again = client.get(response["Location"]).content.decode()
    assert plain not in again
    assert "cannot be shown again" in again
    assert AuditEvent.objects.get(type=AuditEvent.Type.TOKENS_ISSUED).actor == admin_user
    assert plain not in client.get(f"/admin/scim/scimtoken/{token.pk}/change/").content.decode()


def test_the_admin_refuses_a_token_covering_nothing_and_revokes_by_action(client, admin_user):
    client.force_login(admin_user)
    refused = client.post("/admin/scim/scimtoken/add/", {"name": "Nothing"})
    assert refused.status_code == HTTPStatus.OK
    assert not ScimToken.objects.filter(name="Nothing").exists()
    plain = run("create", "--name", "HR").strip()
    token = ScimToken.objects.get(name="HR")
    client.post(
        "/admin/scim/scimtoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert ScimClient(client, plain).get("Users").status_code == HTTPStatus.UNAUTHORIZED
