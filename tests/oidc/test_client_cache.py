"""The token side's client cache: used on the hot paths, invalidated by every client service.

The cache is on only where every worker shares it (Redis); these tests turn it on over Django's
local-memory cache, which behaves the same within one process: every test here that changes a
client after a grant proves that the next request sees the change.
"""

from __future__ import annotations

from http import HTTPStatus
from unittest import mock

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients import client_cache, services
from oauth_clients.models import AccessToken, Client, Grant
from oauth_clients.oidc.tokens import hash_code
from tests.oidc.conftest import basic_auth, post_form
from tests.oidc.race_helpers import ON_POSTGRESQL

CC = {"grant_type": "client_credentials"}
# Invalidation runs when the service's transaction commits, so these tests really commit.
committing = pytest.mark.django_db(transaction=True)
on_postgresql = ON_POSTGRESQL[0]  # the skip only: each test says whether it commits


@pytest.fixture(autouse=True)
def client_cache_on(settings):
    settings.IDP_CLIENT_CACHE_SECONDS = 300
    cache.clear()
    yield
    cache.clear()


def token_request(http, oauth_client, secret=None):
    auth = basic_auth(oauth_client.client_id, secret or oauth_client.test_secret)
    return post_form(http, reverse("oauth2_provider:token"), CC, HTTP_AUTHORIZATION=auth)


def client_queries(captured) -> list[str]:
    """Statements reading the client (the guarded INSERT only names it in its condition)."""
    return [
        q["sql"]
        for q in captured
        if q["sql"].startswith("SELECT") and 'FROM "oauth_clients_client"' in q["sql"]
    ]


def test_a_cached_client_is_read_without_a_query(
    client, machine_client, django_assert_max_num_queries
):
    assert token_request(client, machine_client).status_code == HTTPStatus.OK
    with django_assert_max_num_queries(1) as captured:  # the INSERT, nothing else
        assert token_request(client, machine_client).status_code == HTTPStatus.OK
    assert client_queries(captured) == []
    # The cached copy's last_used_at is stale, yet last_used_at is not written again within
    # the minute: the only write is the access token.
    writes = [q["sql"] for q in captured if q["sql"].split()[0] in {"INSERT", "UPDATE"}]
    assert len(writes) == 1
    assert writes[0].startswith('INSERT INTO "oauth_clients_accesstoken"')


@committing
def test_disabling_a_client_refuses_its_next_token_request(client, machine_client, admin_user):
    assert token_request(client, machine_client).status_code == HTTPStatus.OK  # now cached
    services.disable_client(client=machine_client, actor=admin_user)
    response = token_request(client, machine_client)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"
    services.enable_client(client=machine_client, actor=admin_user)
    assert token_request(client, machine_client).status_code == HTTPStatus.OK


@committing
def test_a_rotated_secret_stops_working_at_once(client, machine_client, admin_user):
    assert token_request(client, machine_client).status_code == HTTPStatus.OK
    new_secret = services.rotate_client_secret(client=machine_client, actor=admin_user)
    old = token_request(client, machine_client)
    assert old.status_code == HTTPStatus.UNAUTHORIZED
    assert token_request(client, machine_client, secret=new_secret).status_code == HTTPStatus.OK


@committing
def test_a_changed_setting_applies_to_the_next_request(client, admin_user):
    from tests.oidc.conftest import make_client

    service = make_client(
        name="Reports",
        client_id="reports",
        secret="r" * 40,
        kind=Client.Kind.SERVICE,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
    )
    assert token_request(client, service).json()["expires_in"] == 600  # now cached
    services.update_client(client=service, actor=admin_user, changes={"access_token_lifetime": 120})
    assert token_request(client, service).json()["expires_in"] == 120


@committing
def test_a_deleted_client_is_unknown_at_once(client, machine_client, admin_user):
    assert token_request(client, machine_client).status_code == HTTPStatus.OK
    services.delete_client(client=machine_client, actor=admin_user)
    assert token_request(client, machine_client).status_code == HTTPStatus.UNAUTHORIZED


def test_a_new_client_is_found_at_once(client, db):
    from tests.oidc.conftest import make_client

    ghost = Client(client_id="not-yet", client_type=Client.CLIENT_CONFIDENTIAL)
    ghost.test_secret = "s" * 40
    assert token_request(client, ghost).status_code == HTTPStatus.UNAUTHORIZED  # miss not kept
    make_client(
        client_id="not-yet",
        secret="s" * 40,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
    )
    assert token_request(client, ghost).status_code == HTTPStatus.OK


@committing
def test_a_reader_racing_a_change_cannot_put_the_old_row_back(machine_client, admin_user):
    """A reader loaded the row just before the change committed and stores it afterwards: its
    entry carries the generation it saw, so later readers reload instead of using it."""
    stale_generation = cache.get(client_cache.GENERATION_KEY)
    stale = client_cache.get_client(machine_client.client_id)
    assert stale is not None
    assert stale.is_active
    services.disable_client(client=machine_client, actor=admin_user)
    key = client_cache._key(machine_client.client_id)
    cache.set(key, (stale_generation, stale))  # the racing reader's late store
    assert client_cache.get_client(machine_client.client_id).is_active is False


def test_invalidation_waits_for_the_commit(
    machine_client, admin_user, django_capture_on_commit_callbacks
):
    client_cache.get_client(machine_client.client_id)
    before = cache.get(client_cache.GENERATION_KEY)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.disable_client(client=machine_client, actor=admin_user)
    assert cache.get(client_cache.GENERATION_KEY) == before  # not yet: still uncommitted
    for callback in callbacks:
        callback()
    assert cache.get(client_cache.GENERATION_KEY) != before


def test_the_token_endpoint_works_when_the_cache_is_down(client, machine_client):
    broken = mock.patch.object(cache, "get_many", side_effect=ConnectionError("cache down"))
    with broken, mock.patch.object(cache, "set", side_effect=ConnectionError("cache down")):
        assert token_request(client, machine_client).status_code == HTTPStatus.OK


@committing
def test_tokens_of_a_disabled_client_are_inactive_at_userinfo_and_introspection(
    client, web_client, issue_tokens, admin_user
):
    resource = Client.objects.create(
        client_id="api",
        client_secret="a" * 40,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        is_resource_server=True,
    )
    token = issue_tokens(web_client)["access_token"]
    introspect = reverse("oauth2_provider:introspect")
    auth = basic_auth("api", "a" * 40)
    assert post_form(client, introspect, {"token": token}, HTTP_AUTHORIZATION=auth).json()["active"]
    userinfo = reverse("oauth2_provider:user-info")
    assert client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    services.disable_client(client=web_client, actor=admin_user)
    answer = post_form(client, introspect, {"token": token}, HTTP_AUTHORIZATION=auth).json()
    assert answer == {"active": False}
    assert client.get(userinfo, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert resource.is_active


def test_off_without_a_shared_cache(settings, client, machine_client, django_assert_num_queries):
    settings.IDP_CLIENT_CACHE_SECONDS = 0
    token_request(client, machine_client)
    with django_assert_num_queries(2) as captured:  # the client, then the INSERT (autocommit)
        assert token_request(client, machine_client).status_code == HTTPStatus.OK
    assert len(client_queries(captured)) == 1


# ------------------------------------------------ the code exchange on the shared cache


def flow_grant(flow) -> Grant:
    return Grant.objects.get(code=hash_code(flow.code))


@committing
def test_a_code_exchange_after_a_change_follows_the_row(
    client, web_client, run_code_flow, exchange_code, admin_user
):
    assert exchange_code(web_client, run_code_flow(web_client)).status_code == HTTPStatus.OK
    flow = run_code_flow(web_client)  # the client is cached now
    services.update_client(
        client=web_client, actor=admin_user, changes={"access_token_lifetime": 120}
    )
    response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.OK
    assert response.json()["expires_in"] == 120  # the changed row, not the cached one
    assert flow_grant(flow).consumed_at is not None


@committing
def test_a_code_exchange_for_a_client_disabled_since_it_was_cached_is_refused(
    client, web_client, run_code_flow, exchange_code, admin_user
):
    assert exchange_code(web_client, run_code_flow(web_client)).status_code == HTTPStatus.OK
    flow = run_code_flow(web_client)
    services.disable_client(client=web_client, actor=admin_user)
    response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"
    assert not Grant.objects.filter(code=hash_code(flow.code), consumed_at__isnull=False).exists()
    assert AccessToken.objects.filter(application=web_client).count() == 0


@pytest.mark.spec("RFC 6749", "4.1.2")
def test_a_code_replayed_with_a_cached_client_is_revoked_and_audited_once(
    web_client, run_code_flow, exchange_code
):
    flow = run_code_flow(web_client)
    assert exchange_code(web_client, flow).status_code == HTTPStatus.OK
    code_checksum = flow_grant(flow).code
    assert AccessToken.objects.filter(code_checksum=code_checksum).count() == 1
    again = exchange_code(web_client, flow)
    assert again.status_code == HTTPStatus.BAD_REQUEST
    assert again.json()["error"] == "invalid_grant"
    assert AccessToken.objects.filter(code_checksum=code_checksum).count() == 0
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REPLAY).count() == 1


API_AUDIENCE = "https://orders.example.com/api"


@pytest.fixture
def orders_api(db) -> Client:
    from tests.oidc.conftest import make_client

    return make_client(
        name="Orders API",
        client_id="orders-api",
        kind=Client.Kind.API,
        audience=API_AUDIENCE,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        algorithm="ES256",
        allowed_scopes="",
    )


def api_token_request(http, oauth_client):
    auth = basic_auth(oauth_client.client_id, oauth_client.test_secret)
    data = {**CC, "resource": API_AUDIENCE}
    return post_form(http, reverse("oauth2_provider:token"), data, HTTP_AUTHORIZATION=auth)


@pytest.mark.spec("RFC 9068", "2.2")
def test_a_jwt_grant_reads_its_client_and_api_in_one_cache_round_trip(
    client, machine_client, orders_api, django_assert_num_queries
):
    assert api_token_request(client, machine_client).status_code == HTTPStatus.OK  # warm
    with (
        mock.patch.object(cache, "get_many", wraps=cache.get_many) as reads,
        django_assert_num_queries(0),  # nothing written, nothing read from the database
    ):
        response = api_token_request(client, machine_client)
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["access_token"].count(".") == 2  # an RFC 9068 JWT
    assert reads.call_count == 1
    assert len(reads.call_args.args[0]) == 3  # the generation, the client, the API


@committing
def test_a_disabled_api_is_seen_by_the_next_jwt_grant(
    client, machine_client, orders_api, admin_user
):
    assert api_token_request(client, machine_client).json()["access_token"].count(".") == 2
    services.disable_client(client=orders_api, actor=admin_user)
    # A disabled API is no API: the client gets an opaque token for no audience, as for an
    # unregistered resource (tests/oidc/test_jwt_access_tokens.py).
    response = api_token_request(client, machine_client)
    assert response.status_code == HTTPStatus.OK
    assert "." not in response.json()["access_token"]
