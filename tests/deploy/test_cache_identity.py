"""The shared cache (Redis) cannot outlive its database: its keys name the database's
`Installation` (idp/cache_keys.py), so a re-created database never meets the entries of the
one before it (a restore, a re-seed, while Redis keeps its data)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core.cache import cache
from django.urls import reverse

from idp.cache_keys import UNMIGRATED, database_identity, forget_database_identity, make_key
from idp.models import Installation
from oauth_clients.models import Client
from tests.oidc.conftest import basic_auth, make_client, post_form

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

OLD_SECRET = "the-secret-of-the-database-before-" + "o" * 20
NEW_SECRET = "the-secret-of-the-restored-database-" + "n" * 20


def token_request(http, client_id: str, secret: str):
    return post_form(
        http,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(client_id, secret),
    )


def service_client(secret: str) -> Client:
    return make_client(
        name="Batch Service",
        client_id="batch-service",
        secret=secret,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
    )


@pytest.fixture
def fresh_process(settings):
    """The client cache on, as with REDIS_URL, and this process's identity read anew.

    The database's Installation row as its migration writes it: an earlier `transaction=True`
    test of the same process may have emptied every table when it ended."""
    settings.IDP_CLIENT_CACHE_SECONDS = 300
    if not Installation.objects.exists():
        Installation.objects.create()
    forget_database_identity()
    yield
    forget_database_identity()


def test_keys_name_the_database_they_were_read_from(redis_cache, fresh_process):
    identity = database_identity()
    assert identity == Installation.objects.get().id.hex
    assert make_key("k", "idp", 1) == f"idp:{identity}:1:k"
    cache.set("probe", 1)
    assert redis_cache.exists(f"idp:{identity}:1:probe")


def test_a_recreated_database_never_meets_the_clients_cached_from_the_one_before(
    client,
    redis_cache,
    fresh_process,
):
    service_client(OLD_SECRET)
    assert token_request(client, "batch-service", OLD_SECRET).status_code == HTTPStatus.OK
    before = database_identity()
    assert any(before.encode() in key for key in redis_cache.keys("*"))  # the client, cached

    # The database is re-created (a restore of another state, a re-seed): the same client id
    # with another secret, and a new installation from its first migration. Redis keeps its
    # data; the application's processes start anew.
    Client.objects.all().delete()  # not through the services: nothing is invalidated
    Installation.objects.all().delete()
    Installation.objects.create()
    service_client(NEW_SECRET)
    forget_database_identity()

    refused = token_request(client, "batch-service", OLD_SECRET)
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert refused.json()["error"] == "invalid_client"
    assert token_request(client, "batch-service", NEW_SECRET).status_code == HTTPStatus.OK
    assert database_identity() != before


def test_before_the_first_migration_keys_say_so_and_the_identity_is_read_again(
    redis_cache,
    fresh_process,
):
    Installation.objects.all().delete()
    assert database_identity() == UNMIGRATED
    Installation.objects.create()
    assert database_identity() == Installation.objects.get().id.hex
