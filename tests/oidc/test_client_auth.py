"""Client authentication at the token endpoint (RFC 6749 §2.3.1, §3.2.1): keyed secret hash,
rotation grace period, disabled clients, cheap `last_used_at`."""

from __future__ import annotations

import base64
import datetime as dt
from http import HTTPStatus

import pytest
import time_machine
from django.utils import timezone

from oauth_clients.models import Client
from oauth_clients.secrets import hash_client_secret
from tests.oidc.conftest import basic_auth, post_form

NEW_SECRET = "rotated-secret-" + "n" * 30


@pytest.fixture
def cc(client, token_endpoint):
    """A client-credentials request with the given headers/body extras."""

    def do(extra: dict[str, str] | None = None, **headers: str):
        data = {"grant_type": "client_credentials", **(extra or {})}
        return post_form(client, token_endpoint, data, **headers)

    return do


def assert_invalid_client(response) -> None:
    assert response.status_code == HTTPStatus.UNAUTHORIZED, response.content
    assert response.json()["error"] == "invalid_client"


@pytest.mark.spec("RFC 6749", "2.3.1")
def test_client_secret_basic(machine_client, cc):
    response = cc(HTTP_AUTHORIZATION=basic_auth("batch-service", machine_client.test_secret))
    assert response.status_code == HTTPStatus.OK, response.content


@pytest.mark.spec("RFC 6749", "2.3.1")
def test_client_secret_post(machine_client, cc):
    response = cc({"client_id": "batch-service", "client_secret": machine_client.test_secret})
    assert response.status_code == HTTPStatus.OK, response.content


@pytest.mark.spec("RFC 6749", "2.3.1")
def test_basic_credentials_are_form_urlencoded_first(db, cc):
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64 (e.g. `:` and `%`)."""
    Client.objects.create(
        name="Odd",
        client_id="odd:id",
        client_secret="s3cret:with%chars+" + "k" * 30,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
    )
    response = cc(HTTP_AUTHORIZATION=basic_auth("odd:id", "s3cret:with%chars+" + "k" * 30))
    assert response.status_code == HTTPStatus.OK, response.content


@pytest.mark.spec("RFC 6749", "5.2")
def test_wrong_secret_is_invalid_client(machine_client, cc):
    assert (
        cc(HTTP_AUTHORIZATION=basic_auth("batch-service", machine_client.test_secret)).status_code
        == HTTPStatus.OK
    )
    assert_invalid_client(cc(HTTP_AUTHORIZATION=basic_auth("batch-service", "wrong")))
    assert_invalid_client(cc({"client_id": "batch-service", "client_secret": "wrong"}))
    assert_invalid_client(cc({"client_id": "batch-service"}))


@pytest.mark.spec("RFC 6749", "5.2")
def test_unknown_client_is_invalid_client(db, cc):
    assert_invalid_client(cc(HTTP_AUTHORIZATION=basic_auth("nobody", "secret")))
    assert_invalid_client(cc({"client_id": "nobody", "client_secret": "secret"}))


def test_stored_secret_hash_is_never_accepted_as_the_secret(machine_client, cc):
    stored = Client.objects.get(pk=machine_client.pk).client_secret
    assert stored == hash_client_secret(machine_client.test_secret)
    assert_invalid_client(cc(HTTP_AUTHORIZATION=basic_auth("batch-service", stored)))


@pytest.mark.spec("RFC 6749", "2.3")
def test_two_authentication_methods_in_one_request_are_refused(machine_client, cc):
    secret = machine_client.test_secret
    response = cc({"client_secret": secret}, HTTP_AUTHORIZATION=basic_auth("batch-service", secret))
    assert_invalid_client(response)


def test_basic_and_body_naming_different_clients_is_refused(machine_client, web_client, cc):
    response = cc(
        {"client_id": "web-app"},
        HTTP_AUTHORIZATION=basic_auth("batch-service", machine_client.test_secret),
    )
    assert_invalid_client(response)


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"batch\x00service:secret").decode(),
        "Basic " + base64.b64encode(b"batch%00service:secret").decode(),
        "Basic " + base64.b64encode(b"x" * 300 + b":secret").decode(),
        "Basic",
        "Bearer abc",
    ],
)
def test_malformed_authorization_header_is_invalid_client_not_a_crash(machine_client, cc, header):
    response = cc(HTTP_AUTHORIZATION=header)
    assert response.status_code in {HTTPStatus.UNAUTHORIZED, HTTPStatus.BAD_REQUEST}
    assert response.json()["error"] in {"invalid_client", "invalid_request"}


def test_disabled_client_is_invalid_client(machine_client, cc):
    auth = basic_auth("batch-service", machine_client.test_secret)
    assert cc(HTTP_AUTHORIZATION=auth).status_code == HTTPStatus.OK
    Client.objects.filter(pk=machine_client.pk).update(is_active=False)
    assert_invalid_client(cc(HTTP_AUTHORIZATION=auth))


def rotate(client: Client, *, grace: dt.timedelta) -> None:
    """What a secret rotation leaves behind (oauth_clients/services.py does this for real)."""
    client.previous_client_secret = client.client_secret
    client.previous_secret_expires_at = timezone.now() + grace
    client.client_secret = NEW_SECRET
    client.save()


def test_previous_secret_works_during_the_grace_period_only(machine_client, cc):
    old = machine_client.test_secret
    rotate(machine_client, grace=dt.timedelta(hours=1))
    assert (
        cc(HTTP_AUTHORIZATION=basic_auth("batch-service", NEW_SECRET)).status_code == HTTPStatus.OK
    )
    assert cc(HTTP_AUTHORIZATION=basic_auth("batch-service", old)).status_code == HTTPStatus.OK
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1, seconds=1)):
        assert_invalid_client(cc(HTTP_AUTHORIZATION=basic_auth("batch-service", old)))
        assert (
            cc(HTTP_AUTHORIZATION=basic_auth("batch-service", NEW_SECRET)).status_code
            == HTTPStatus.OK
        )


def test_last_used_at_is_stamped_at_most_once_a_minute(machine_client, cc):
    auth = basic_auth("batch-service", machine_client.test_secret)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert cc(HTTP_AUTHORIZATION=auth).status_code == HTTPStatus.OK
    first = Client.objects.get(pk=machine_client.pk).last_used_at
    assert first == start
    with time_machine.travel(start + dt.timedelta(seconds=30), tick=False):
        assert cc(HTTP_AUTHORIZATION=auth).status_code == HTTPStatus.OK
    assert Client.objects.get(pk=machine_client.pk).last_used_at == first
    with time_machine.travel(start + dt.timedelta(seconds=61), tick=False):
        assert cc(HTTP_AUTHORIZATION=auth).status_code == HTTPStatus.OK
    assert Client.objects.get(pk=machine_client.pk).last_used_at == start + dt.timedelta(seconds=61)


def test_public_client_may_not_present_a_secret(spa_client, client, token_endpoint):
    response = post_form(
        client,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": "x", "client_id": "spa-app"},
        HTTP_AUTHORIZATION=basic_auth("spa-app", "anything"),
    )
    assert_invalid_client(response)
