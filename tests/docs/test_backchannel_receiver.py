"""The demo app's back-channel logout receiver checks logout tokens as the spec says (§2.6)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time

import jwt
import pytest

from tests.docs.conftest import (
    BACKCHANNEL_EVENT,
    CLIENT_ID,
    DEMO_DIR,
    ISSUER,
    Signer,
    import_demo_module,
)

SPEC = "OpenID Connect Back-Channel Logout 1.0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_jwt(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture(scope="module")
def logout_tokens():
    return import_demo_module("demo.logout_tokens")


def verify(logout_tokens, token: str, jwks: dict, **kw):
    return logout_tokens.verify_logout_token(
        token, issuer=ISSUER, client_id=CLIENT_ID, jwks=jwks, **kw
    )


@pytest.mark.spec(SPEC, "2.4")
@pytest.mark.spec(SPEC, "2.6")
def test_a_valid_logout_token_names_the_subject_and_session(logout_tokens, signer):
    claims = verify(logout_tokens, signer.sign(), signer.jwks)
    assert claims.sub == "42"
    assert claims.sid == "session-abc"
    assert claims.jti


@pytest.mark.spec(SPEC, "2.4")
def test_sub_or_sid_alone_is_enough_and_typ_is_optional(logout_tokens, signer):
    assert verify(logout_tokens, signer.sign(signer.claims(sid=None)), signer.jwks).sid == ""
    assert verify(logout_tokens, signer.sign(signer.claims(sub=None)), signer.jwks).sub == ""
    untyped = signer.sign(headers={"typ": None})
    assert verify(logout_tokens, untyped, signer.jwks).sub == "42"


@pytest.mark.spec(SPEC, "2.6")
@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "https://evil.example"}, "invalid"),
        ({"aud": "another-app"}, "invalid"),
        ({"iat": None}, "invalid"),
        ({"exp": None}, "invalid"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3700}, "invalid"),
        ({"jti": None}, "invalid"),
        ({"jti": ""}, "jti"),
        ({"events": None}, "events"),
        ({"events": {"http://schemas.openid.net/event/other": {}}}, "events"),
        ({"events": {BACKCHANNEL_EVENT: "yes"}}, "events"),
        ({"sub": None, "sid": None}, "neither sub nor sid"),
        ({"nonce": "n-0S6_WzA2Mj"}, "nonce"),
        ({"sub": 42}, "string"),
    ],
)
def test_tokens_failing_a_check_are_refused(logout_tokens, signer, overrides, reason):
    assert verify(logout_tokens, signer.sign(), signer.jwks)  # the positive path first

    with pytest.raises(logout_tokens.LogoutTokenError, match=reason):
        verify(logout_tokens, signer.sign(signer.claims(**overrides)), signer.jwks)


@pytest.mark.spec(SPEC, "2.6")
def test_signatures_by_another_key_alg_none_or_hmac_are_refused(logout_tokens, signer):
    assert verify(logout_tokens, signer.sign(), signer.jwks)
    LogoutTokenError = logout_tokens.LogoutTokenError

    impostor = Signer(kid=signer.kid)  # same kid, different key
    with pytest.raises(LogoutTokenError, match="invalid"):
        verify(logout_tokens, impostor.sign(), signer.jwks)

    unsigned = jwt.encode(signer.claims(), None, algorithm="none", headers={"kid": signer.kid})
    with pytest.raises(LogoutTokenError, match="algorithm"):
        verify(logout_tokens, unsigned, signer.jwks)

    # HS256 keyed with the public JWK text: the classic algorithm-confusion attack (built by
    # hand: PyJWT itself refuses to sign with a public key as an HMAC secret).
    public_jwk = json.dumps(signer.jwks["keys"][0]).encode()
    confused = hmac_jwt({"alg": "HS256", "kid": signer.kid}, signer.claims(), public_jwk)
    with pytest.raises(LogoutTokenError, match="algorithm"):
        verify(logout_tokens, confused, signer.jwks)

    with pytest.raises(LogoutTokenError, match="kid"):
        verify(logout_tokens, signer.sign(headers={"kid": "unknown"}), signer.jwks)
    with pytest.raises(LogoutTokenError, match="typ"):
        verify(logout_tokens, signer.sign(headers={"typ": "at+jwt"}), signer.jwks)
    with pytest.raises(LogoutTokenError, match="not a JWT"):
        verify(logout_tokens, "not-a-jwt", signer.jwks)


@pytest.mark.spec(SPEC, "2.6")
def test_an_id_token_is_not_a_logout_token(logout_tokens, signer):
    id_token_claims = signer.claims(events=None, nonce="abc")
    with pytest.raises(logout_tokens.LogoutTokenError):
        verify(logout_tokens, signer.sign(id_token_claims, headers={"typ": "JWT"}), signer.jwks)


@pytest.mark.spec(SPEC, "2.5")
@pytest.mark.spec(SPEC, "2.7")
@pytest.mark.spec(SPEC, "2.8")
def test_the_demo_apps_receiver_ends_the_matching_sessions(tmp_path):
    """The demo app's own Django tests (deploy/demo-app/demo/tests.py): the view verifies a
    token signed in the test, ends the session of that sid, refuses replays and bad input."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEMO_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "demo", "-v", "2", "--noinput"],
        cwd=DEMO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "OK" in output
    assert "test_valid_logout_token_ends_that_session_only" in output
