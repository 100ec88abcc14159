"""The token store (oauth_clients/oidc/store.py): both implementations write the same rows.

The ORM store runs on every database, PostgreSQL's one-statement store on PostgreSQL; each test
runs every store this database can run, with identical assertions.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import AuditEvent
from oauth_clients.models import AccessToken, Grant, IDToken, RefreshToken
from oauth_clients.oidc import store
from oauth_clients.oidc.tokens import hash_code, token_checksum

STORES = [
    pytest.param(store.OrmStore(), id="orm"),
    pytest.param(
        store.PostgresStore(),
        id="postgresql",
        marks=pytest.mark.skipif(
            connection.vendor != "postgresql", reason="PostgreSQL's one-statement store"
        ),
    ),
]


def new_rows(client, user, *, with_id_token: bool = True, family=None):
    """Unsaved rows as the validator builds them: ID, access and refresh token."""
    now = timezone.now()
    id_token = (
        IDToken(user=user, application=client, jti=uuid.uuid4(), expires=now + timedelta(minutes=5))
        if with_id_token
        else None
    )
    access_token = AccessToken(
        user=user,
        application=client,
        token=secrets.token_urlsafe(32),
        expires=now + timedelta(minutes=10),
        scope="openid",
        id_token=id_token,
    )
    refresh_token = RefreshToken(
        user=user,
        application=client,
        token=secrets.token_urlsafe(32),
        access_token=access_token,
        token_family=family or uuid.uuid4(),
    )
    return now, access_token, refresh_token, id_token


def issued(user) -> tuple[int, int, int]:
    return (
        AccessToken.objects.filter(user=user).count(),
        RefreshToken.objects.filter(user=user, revoked__isnull=True).count(),
        IDToken.objects.filter(user=user).count(),
    )


@pytest.mark.parametrize("implementation", STORES)
@pytest.mark.parametrize("with_id_token", [True, False], ids=["openid", "oauth"])
@pytest.mark.spec("RFC 6749", "4.1.2")
def test_an_exchange_consumes_the_code_and_writes_linked_rows_once(
    implementation, with_id_token, web_client, user, run_code_flow
):
    flow = run_code_flow(web_client)
    grant = Grant.objects.get(code=hash_code(flow.code))
    now, access_token, refresh_token, id_token = new_rows(
        web_client, user, with_id_token=with_id_token
    )
    event = AuditEvent(type=AuditEvent.Type.TOKENS_ISSUED, subject=user, client=web_client)
    assert implementation.exchange_code(
        grant=grant,
        now=now,
        access_token=access_token,
        refresh_token=refresh_token,
        id_token=id_token,
        audit_event=event,
    )
    grant.refresh_from_db()
    assert grant.consumed_at is not None
    stored = AccessToken.objects.get(pk=access_token.pk)
    assert stored.token_checksum == token_checksum(access_token.token)
    assert stored.id_token_id == (id_token.pk if with_id_token else None)
    assert RefreshToken.objects.get(pk=refresh_token.pk).access_token_id == stored.pk
    assert AuditEvent.objects.filter(pk=event.pk, type=AuditEvent.Type.TOKENS_ISSUED).exists()
    assert issued(user) == (1, 1, 1 if with_id_token else 0)

    # The same code again (a concurrent or repeated exchange): nothing written.
    again = new_rows(web_client, user, with_id_token=with_id_token)
    assert not implementation.exchange_code(
        grant=grant,
        now=again[0],
        access_token=again[1],
        refresh_token=again[2],
        id_token=again[3],
        audit_event=AuditEvent(type=AuditEvent.Type.TOKENS_ISSUED, subject=user),
    )
    assert issued(user) == (1, 1, 1 if with_id_token else 0)
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKENS_ISSUED, subject=user).count() == 1


@pytest.mark.parametrize("implementation", STORES)
@pytest.mark.spec("RFC 9700", "4.14.2")
def test_a_rotation_retires_the_pair_and_writes_the_new_one_once(
    implementation, web_client, user, issue_tokens
):
    first = issue_tokens(web_client)
    previous = RefreshToken.objects.get(token_checksum=token_checksum(first["refresh_token"]))
    old_access_pk = previous.access_token_id
    now, access_token, refresh_token, id_token = new_rows(
        web_client, user, family=previous.token_family
    )
    assert implementation.rotate_refresh(
        previous=previous,
        now=now,
        access_token=access_token,
        refresh_token=refresh_token,
        id_token=id_token,
    )
    previous.refresh_from_db()
    assert previous.revoked is not None
    assert previous.access_token_id is None
    assert not AccessToken.objects.filter(pk=old_access_pk).exists()  # deleted, everywhere
    assert AccessToken.objects.get(pk=access_token.pk).id_token_id == id_token.pk
    assert RefreshToken.objects.get(pk=refresh_token.pk).access_token_id == access_token.pk
    before = issued(user)
    assert before[:2] == (1, 1)

    # The same refresh token again: nothing written.
    again = new_rows(web_client, user, family=previous.token_family)
    assert not implementation.rotate_refresh(
        previous=previous,
        now=again[0],
        access_token=again[1],
        refresh_token=again[2],
        id_token=again[3],
    )
    assert issued(user) == before


def test_the_store_is_chosen_by_the_database_once():
    chosen = store.implementation()
    expected = store.PostgresStore if connection.vendor == "postgresql" else store.OrmStore
    assert isinstance(chosen, expected)
    assert store.implementation() is chosen


@pytest.mark.parametrize("implementation", STORES)
@pytest.mark.spec("RFC 8628", "3.5")
def test_a_device_exchange_consumes_the_device_code_and_writes_linked_rows_once(
    implementation, user
):
    from oauth_clients.models import DeviceAuthorization
    from tests.oidc.device_helpers import register_device_app

    device_app = register_device_app()
    device = DeviceAuthorization.objects.create(
        application=device_app,
        device_code=hash_code("device-code"),
        user_code=hash_code("BCDFGHJK"),
        status=DeviceAuthorization.Status.APPROVED,
        user=user,
        expires=timezone.now() + timedelta(minutes=10),
    )
    now, access_token, refresh_token, id_token = new_rows(device_app, user)
    event = AuditEvent(type=AuditEvent.Type.TOKENS_ISSUED, subject=user, client=device_app)
    assert implementation.exchange_device_code(
        device=device,
        now=now,
        access_token=access_token,
        refresh_token=refresh_token,
        id_token=id_token,
        audit_event=event,
    )
    device.refresh_from_db()
    assert device.consumed_at is not None
    assert RefreshToken.objects.get(pk=refresh_token.pk).access_token_id == access_token.pk
    assert AccessToken.objects.get(pk=access_token.pk).id_token_id == id_token.pk
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert issued(user) == (1, 1, 1)

    again = new_rows(device_app, user)
    assert not implementation.exchange_device_code(
        device=device,
        now=again[0],
        access_token=again[1],
        refresh_token=again[2],
        id_token=again[3],
        audit_event=AuditEvent(type=AuditEvent.Type.TOKENS_ISSUED, subject=user),
    )
    assert issued(user) == (1, 1, 1)
