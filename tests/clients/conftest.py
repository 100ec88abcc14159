"""Fixtures for client-registry tests: registered apps and tokens issued to them."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from oauth_clients.models import Client, Consent
from oauth_clients.services import register_client
from tests.conftest import with_password

WEB_REDIRECT = "https://app.example.com/oidc/callback"


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch):
    """Back-channel URI checks resolve names; this machine has no DNS, so names look public."""
    from oauth_clients import uri_rules

    monkeypatch.setattr(uri_rules, "resolve_host", lambda host: ["93.184.216.34"])


@pytest.fixture
def web_client(db, admin_user):
    """A registered server-side web app and its plaintext secret."""
    return register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Wiki",
        redirect_uris=[WEB_REDIRECT],
        post_logout_redirect_uris=["https://app.example.com/"],
        scopes=["openid", "profile", "email"],
        owner_contact="wiki-team@example.com",
    )


@pytest.fixture
def service_client(db, admin_user):
    """A machine-to-machine client and its plaintext secret."""
    return register_client(
        actor=admin_user,
        kind=Client.Kind.SERVICE,
        name="Nightly export",
        scopes=[],
    )


def issue_tokens(client: Client, user, *, expired: bool = False) -> dict:
    """What a finished sign-in leaves behind: code, ID/access/refresh tokens and a consent."""
    now = timezone.now()
    expires = now - timedelta(minutes=1) if expired else now + timedelta(minutes=10)
    id_token = get_id_token_model().objects.create(user=user, application=client, expires=expires)
    access = get_access_token_model().objects.create(
        user=user,
        application=client,
        token=secrets.token_urlsafe(32),
        expires=expires,
        scope="openid profile",
        id_token=id_token,
    )
    refresh = get_refresh_token_model().objects.create(
        user=user, application=client, token=secrets.token_urlsafe(32), access_token=access
    )
    code = get_grant_model().objects.create(
        user=user,
        application=client,
        code=secrets.token_hex(32),
        expires=now + timedelta(minutes=1),
        redirect_uri=WEB_REDIRECT,
        scope="openid",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    consent, _ = Consent.objects.update_or_create(
        user=user, client=client, defaults={"scopes": "openid profile"}
    )
    return {
        "id_token": id_token,
        "access": access,
        "refresh": refresh,
        "code": code,
        "consent": consent,
    }


@pytest.fixture
def staff_user(db, password_hash):
    """A staff member with no permissions at all (password: the `password` fixture's)."""
    from django.contrib.auth import get_user_model

    created = get_user_model().objects.create_user("bob", "bob@example.com", None, is_staff=True)
    return with_password(created, password_hash)


def grant_client_permissions(user, *codenames: str) -> None:
    """Give `user` the named oauth_clients permissions (e.g. view_client, change_client)."""
    perms = Permission.objects.filter(
        content_type__app_label="oauth_clients", codename__in=codenames
    )
    assert perms.count() == len(codenames)
    user.user_permissions.add(*perms)
