"""Node's openid-client (the certified RP library) runs the code flow with a pushed
authorization request (RFC 9126), private_key_jwt client authentication (RFC 7523) and
DPoP-bound tokens (RFC 9449), then userinfo and a refresh with DPoP, against this IdP:
the "PAR + DPoP + private_key_jwt code flow; refresh with DPoP" acceptance; the same for a
high-security client (FAPI 2.0 Security Profile: ES256 assertion, the code bound to the DPoP
key by the push's proof)."""

from __future__ import annotations

import json
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from oauth_clients import services
from oauth_clients.models import AccessToken, Client, Grant
from oauth_clients.oidc.tokens import token_checksum
from tests.docs.conftest import ROOT, browser_sign_in
from tests.oidc.pkjwt_helpers import ClientKey, jwks_of

pytestmark = [pytest.mark.django_db(transaction=True)]

NODE_DIR = ROOT / "tests" / "docs" / "node"
NODE = shutil.which("node")
REDIRECT_URI = "https://par-app.example.com/callback"


@pytest.mark.spec("RFC 9126", "2.1")
@pytest.mark.spec("RFC 9126", "4")
@pytest.mark.spec("RFC 9449", "5")
@pytest.mark.spec("RFC 9449", "7.1")
@pytest.mark.spec("RFC 9449", "10.1")
@pytest.mark.spec("FAPI 2.0 Security Profile", "5.3.2.1")
@pytest.mark.parametrize("high_security", [False, True], ids=["par-client", "high-security"])
def test_openid_client_pushes_with_private_key_jwt_and_dpop_and_gets_bound_tokens(
    provider, admin_user, user, password, high_security
):
    assert NODE, "node (20+) is needed"
    assert (NODE_DIR / "node_modules" / "openid-client").is_dir(), (
        "openid-client is not installed: make install (npm ci in tests/docs/node)"
    )
    # A high-security client (FAPI 2.0) signs its assertions with ES256: RS256 is refused.
    key = ClientKey.ec(kid="par-app-1") if high_security else ClientKey.rsa(kid="par-app-1")
    app, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="PAR App",
        redirect_uris=[REDIRECT_URI],
        is_trusted=True,
        jwks=jwks_of(key),
        require_pushed_authorization_requests=True,
        high_security=high_security,
    )
    assert secret == ""
    to_jwk = jwt.algorithms.get_default_algorithms()[key.alg].to_jwk
    private_jwk = {**json.loads(to_jwk(key.private)), "kid": key.kid}
    rp = subprocess.Popen(
        [
            NODE,
            str(NODE_DIR / "par_flow.mjs"),
            provider,
            app.client_id,
            REDIRECT_URI,
            json.dumps(private_jwk),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(rp.stdout.readline() or "{}")
        assert started.get("url"), rp.stderr.read()[-2000:]
        query = parse_qs(urlsplit(started["url"]).query)
        # The browser carries the reference only: the request itself was pushed.
        assert set(query) == {"client_id", "request_uri"}
        assert query["request_uri"][0].startswith("urn:ietf:params:oauth:request_uri:")

        callback = browser_sign_in(started["url"], provider, user.username, password)
        assert callback.startswith(REDIRECT_URI), callback
        out, err = rp.communicate(callback + "\n", timeout=60)
    finally:
        if rp.poll() is None:
            rp.kill()
    assert rp.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    # openid-client checked the ID token (issuer, audience, signature from JWKS, nonce).
    assert result["claims"]["sub"] == str(user.pk)
    assert result["claims"]["aud"] == app.client_id
    # Bound to the RP's key at the code exchange and at the refresh (RFC 9449 §5), and spent
    # with a proof at userinfo (§7.1). openid-client lower-cases the token type (RFC 6749 §5.1:
    # case-insensitive).
    assert result["token_type"] == "dpop"
    assert result["refreshed_token_type"] == "dpop"
    assert result["refreshed_access_token"] != result["access_token"]
    assert result["userinfo"]["sub"] == str(user.pk)
    current = token_checksum(result["refreshed_access_token"])
    bound = AccessToken.objects.get(token_checksum=current)
    assert bound.dpop_jkt
    # openid-client sent its proof with the push too, which bound the code (RFC 9449 §10.1).
    assert Grant.objects.get(application=app).dpop_jkt == bound.dpop_jkt
