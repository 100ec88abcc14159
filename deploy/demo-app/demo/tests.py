"""The demo app's back-channel logout receiver (OpenID Connect Back-Channel Logout 1.0 §2.5-2.8).

Run with `manage.py test demo` (the IdP's suite runs this from tests/docs). Logout tokens are
signed here with a key whose JWKS stands in for the IdP's.
"""

from __future__ import annotations

import json
import time
import uuid
from http import HTTPStatus
from types import SimpleNamespace
from unittest import mock
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client, TestCase, override_settings
from django.test.client import RequestFactory

from demo.logout_tokens import BACKCHANNEL_EVENT
from demo.models import OidcSession
from demo.receivers import remember_idp_session

ISSUER = "https://idp.example.com"
URL = "/backchannel-logout/"


def new_key(kid: str) -> tuple[object, dict]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, {"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}


KEY, JWKS = new_key("k1")


def logout_token(key=KEY, kid: str = "k1", **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "demo-app",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "sub": "42",
        "sid": "sid-1",
        "events": {BACKCHANNEL_EVENT: {}},
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, "RS256", headers={"kid": kid, "typ": "logout+jwt"})


def form_post(data: dict):
    """As the IdP sends it (§2.5): application/x-www-form-urlencoded."""
    return Client().post(
        URL, urlencode(data, doseq=True), content_type="application/x-www-form-urlencoded"
    )


@override_settings(IDP_ISSUER=ISSUER, OIDC_CLIENT_ID="demo-app")
class BackchannelLogoutTests(TestCase):
    def setUp(self) -> None:
        cache.clear()
        patcher = mock.patch("demo.oidc.jwks", return_value=JWKS)
        self.jwks = patcher.start()
        self.addCleanup(patcher.stop)
        users = get_user_model().objects
        self.alice = users.create_user("alice", "alice@example.com")
        self.bob = users.create_user("bob", "bob@example.com")
        self.browsers = {}
        for name, user, sub, sid in [
            ("alice-laptop", self.alice, "42", "sid-1"),
            ("alice-phone", self.alice, "42", "sid-2"),
            ("bob", self.bob, "7", "sid-3"),
        ]:
            browser = Client()
            browser.force_login(user)
            OidcSession.objects.create(
                session_key=browser.session.session_key, user=user, sub=sub, sid=sid
            )
            self.browsers[name] = browser

    def signed_in(self, name: str) -> bool:
        key = self.browsers[name].cookies["demo_session"].value
        return Session.objects.filter(session_key=key).exists()

    def post(self, token: str):
        return form_post({"logout_token": token})

    def test_valid_logout_token_ends_that_session_only(self) -> None:
        response = self.post(logout_token(sid="sid-1"))

        assert response.status_code == HTTPStatus.OK
        assert "no-store" in response["Cache-Control"]
        assert not self.signed_in("alice-laptop")
        assert self.signed_in("alice-phone")
        assert self.signed_in("bob")
        assert not OidcSession.objects.filter(sid="sid-1").exists()

    def test_a_token_with_only_sub_ends_every_session_of_that_user(self) -> None:
        response = self.post(logout_token(sid=None))

        assert response.status_code == HTTPStatus.OK
        assert not self.signed_in("alice-laptop")
        assert not self.signed_in("alice-phone")
        assert self.signed_in("bob")

    def test_a_replayed_token_is_refused(self) -> None:
        token = logout_token(sid="sid-1")
        assert self.post(token).status_code == HTTPStatus.OK

        replay = self.post(token)
        assert replay.status_code == HTTPStatus.BAD_REQUEST
        assert replay.json()["error"] == "invalid_request"
        assert "already used" in replay.json()["error_description"]

    def test_invalid_tokens_and_requests_end_nothing(self) -> None:
        assert self.post(logout_token(sid="sid-3", sub="7")).status_code == HTTPStatus.OK
        other_key, _ = new_key("k1")
        cases = [
            ("forged", {"logout_token": logout_token(key=other_key, sid="sid-1")}),
            ("other audience", {"logout_token": logout_token(aud="other", sid="sid-1")}),
            ("with nonce", {"logout_token": logout_token(nonce="x", sid="sid-1")}),
            ("missing", {}),
            ("two tokens", {"logout_token": [logout_token(), logout_token()]}),
            ("garbage", {"logout_token": "x" * 20_000}),
        ]
        for label, data in cases:
            with self.subTest(label):
                response = form_post(data)
                assert response.status_code == HTTPStatus.BAD_REQUEST
                assert response.json()["error"] == "invalid_request"
                assert "no-store" in response["Cache-Control"]
        assert self.signed_in("alice-laptop")
        assert self.signed_in("alice-phone")

        get = Client().get(URL)
        assert get.status_code == HTTPStatus.METHOD_NOT_ALLOWED
        multipart = Client().post(URL, {"logout_token": logout_token()})
        assert multipart.status_code == HTTPStatus.BAD_REQUEST
        as_json = Client().post(
            URL, json.dumps({"logout_token": logout_token()}), content_type="application/json"
        )
        assert as_json.status_code == HTTPStatus.BAD_REQUEST
        assert self.signed_in("alice-laptop")

    def test_an_unknown_kid_fetches_the_idps_keys_once_more(self) -> None:
        new_private, new_jwks = new_key("k2")
        self.jwks.side_effect = lambda refresh=False: new_jwks if refresh else JWKS

        response = self.post(logout_token(key=new_private, kid="k2", sid="sid-1"))

        assert response.status_code == HTTPStatus.OK
        assert not self.signed_in("alice-laptop")
        assert self.jwks.call_args_list[-1] == mock.call(refresh=True)


class SignInReceiverTests(TestCase):
    def test_a_sign_in_through_the_idp_records_its_sub_and_sid(self) -> None:
        user = get_user_model().objects.create_user("carol")
        request = RequestFactory().get("/")
        from django.contrib.sessions.backends.db import SessionStore

        request.session = SessionStore()
        sociallogin = SimpleNamespace(
            account=SimpleNamespace(uid="9", extra_data={"id_token": {"sub": "9", "sid": "s-9"}})
        )

        remember_idp_session(sender=None, request=request, user=user, sociallogin=sociallogin)

        link = OidcSession.objects.get()
        assert (link.sub, link.sid, link.user) == ("9", "s-9", user)
        assert link.session_key == request.session.session_key

    def test_a_sign_in_without_the_idp_records_nothing(self) -> None:
        user = get_user_model().objects.create_user("dave")
        request = RequestFactory().get("/")
        remember_idp_session(sender=None, request=request, user=user)
        assert not OidcSession.objects.exists()
