"""DPoP (RFC 9449): the proof check, the key thumbprint a token is bound to, the refusal's audit.

A client proves possession of a key pair by signing a short JWT (the proof) for each request and
sending it in the `DPoP` header. Checked here as RFC 9449 §4.3 lists: one well-formed JWT, `typ`
`dpop+jwt`, an asymmetric algorithm (`ALGORITHMS`), a `jwk` header that is a public key only, a
signature that verifies with it, `htm` and `htu` equal to this request's method and URI (query
and fragment ignored), `iat` within `PROOF_WINDOW_SECONDS` of now, `jti` not seen before within
that window (the shared cache, as `oauth_clients.oidc.client_assertion` keeps assertion jtis),
and where an access token is presented, `ath` its SHA-256. The result is the key's RFC 7638
thumbprint (`jkt`), which the token endpoint stores with the tokens it issues (the access token
row's `dpop_jkt`, a JWT's `cnf.jkt`) and which every later use of the token must match.

Used by the token endpoint (`TokenPolicyMixin.validate_dpop`, run after each grant's own
checks), userinfo (`oauth_clients.oidc.views.userinfo`) and every bearer check
(`TokenPolicyMixin.validate_bearer_token` refuses a bound token without its key's proof).

Authorization codes bound to a key (§10): a `dpop_jkt` in the authorization request, or the
proof sent with a pushed request (§10.1, `oauth_clients.oidc.views.par`), is kept on the Grant
and the exchange's proof must be made with that key (`TokenPolicyMixin.validate_dpop`).

Server nonces (RFC 9449 §8) at the token endpoint: every answer to a request with a proof
carries a `DPoP-Nonce`, and a client that must use DPoP (`Client.require_dpop`) must put a
current one in its proofs (else 400 `use_dpop_nonce` with a fresh one), so a proof cannot be
made ahead of time. A nonce is an HMAC of the current five-minute window under the secret key:
every process makes and accepts the same ones without storing any; one stays valid for the
window it was made in and the next.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import jwt as pyjwt
from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import constant_time_compare, salted_hmac
from oauthlib.oauth2.rfc6749 import errors

from accounts.audit import record_event
from accounts.models import AuditEvent

# RFC 9449 §4.2: the proof's media type, and the token type of a bound token (§5, §7.1).
PROOF_TYP = "dpop+jwt"
TOKEN_TYPE = "DPoP"  # noqa: S105 (a token type name, not a secret)
HEADER = "DPoP"
NONCE_HEADER = "DPoP-Nonce"
NONCE_WINDOW_SECONDS = 300
# RFC 9449 §4.3 item 5: asymmetric algorithms only, never `none` or HMAC. The key type (and
# curve) each algorithm needs: an ES256 signature with a P-384 key is refused too.
ALGORITHMS = {
    "ES256": ("EC", "P-256"),
    "PS256": ("RSA", None),
    "RS256": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
}
# FAPI 2.0 Security Profile §5.4.1: a high-security client's proofs use PS256, ES256 or EdDSA
# (Ed25519), never RS256 (PKCS#1 v1.5).
HIGH_SECURITY_ALGORITHMS = ("ES256", "PS256", "EdDSA")
# RFC 9449 §4.3 item 11 and §11.1: a proof is fresh for this long either side of now (clock
# skew included); its jti is remembered for the whole span it could be accepted in.
PROOF_WINDOW_SECONDS = 60
# An RSA-4096 proof (key and signature) is about 2,000 characters.
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
# RFC 7638 §3.2: the members of each key type a thumbprint covers, in lexical order.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}
# RFC 7517/7518: members only a private (or symmetric) key has (RFC 9449 §4.3 item 7).
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_JTI_PREFIX = "oauth:dpop-jti:v1:"


class InvalidProof(Exception):
    """A proof refused; the message is the `error_description` the client gets."""

    def __init__(self, description: str, *, replayed: bool = False) -> None:
        super().__init__(description)
        self.replayed = replayed


class NonceRequired(InvalidProof):
    """A proof without a current server nonce from a client that must use one (§8)."""


class UseDPoPNonceError(errors.OAuth2Error):
    """RFC 9449 §8: 400 `use_dpop_nonce`, with a nonce to use in the `DPoP-Nonce` header."""

    error = "use_dpop_nonce"
    status_code = 400

    @property
    def headers(self) -> dict[str, str]:
        return {NONCE_HEADER: current_nonce()}


def _nonce_for(window: int) -> str:
    return salted_hmac("oauth_clients.oidc.dpop.nonce", str(window), algorithm="sha256").hexdigest()


def current_nonce() -> str:
    """The nonce of this window (RFC 9449 §8), the same in every process."""
    return _nonce_for(int(time.time()) // NONCE_WINDOW_SECONDS)


def nonce_valid(nonce: Any) -> bool:
    """Whether `nonce` is this window's or the previous one's."""
    if not isinstance(nonce, str):
        return False
    window = int(time.time()) // NONCE_WINDOW_SECONDS
    return any(constant_time_compare(nonce, _nonce_for(w)) for w in (window, window - 1))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3: base64url SHA-256 of the key's required members as compact sorted JSON."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps(
        {name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 `ath`: base64url SHA-256 of the access token's ASCII."""
    return _b64url(hashlib.sha256(token.encode("ascii", "replace")).digest())


def endpoint_uri(path: str) -> str:
    """This provider's URI for `path`, on the issuer's scheme and host (as discovery names
    every endpoint), which a proof's `htu` must name."""
    issuer = urlsplit(settings.IDP_ISSUER)
    return f"{issuer.scheme}://{issuer.netloc}{path}"


def _normalized(uri: str) -> tuple[str, str, int | None, str] | None:
    """RFC 9449 §4.3 item 9 (RFC 3986 §6.2.2-6.2.3): scheme and host in lower case, the
    default port dropped, query and fragment ignored; None when it is no absolute URI."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    if port == {"http": 80, "https": 443}[scheme]:
        port = None
    return scheme, host, port, parts.path or "/"


def _public_jwk(header: dict[str, Any], algorithm: str) -> dict[str, Any]:
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidProof("The DPoP proof has no jwk header.")
    if any(name in jwk for name in _PRIVATE_MEMBERS):
        raise InvalidProof("The DPoP proof's jwk must be a public key.")
    kty, crv = ALGORITHMS[algorithm]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise InvalidProof("The DPoP proof's key does not fit its algorithm.")
    if not all(isinstance(jwk.get(name), str) for name in _THUMBPRINT_MEMBERS[kty]):
        raise InvalidProof("The DPoP proof's jwk is malformed.")
    return jwk


def verify_proof(
    *,
    proof: Any,
    method: str,
    uri: str,
    access_token: str | None = None,
    require_nonce: bool = False,
    algorithms: tuple[str, ...] = tuple(ALGORITHMS),
) -> str:
    """The thumbprint of the key that signed `proof` for `method` on `uri` (and, at a resource,
    for `access_token`); raises `InvalidProof` for anything RFC 9449 §4.3 refuses (or an
    algorithm outside `algorithms`), and
    `NonceRequired` when `require_nonce` and the proof has no current nonce. A valid proof is
    spent: the same jti is refused for the rest of the window (`replayed`)."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH or proof.count(".") != 2:
        # Also two DPoP headers, which the server joins with a comma (§4.3 item 1).
        raise InvalidProof("The DPoP header must be one JWT.")
    try:
        header = pyjwt.get_unverified_header(proof)
    except pyjwt.PyJWTError:
        raise InvalidProof("The DPoP proof is not a JWT.") from None
    if header.get("typ") != PROOF_TYP:
        raise InvalidProof(f"The DPoP proof's typ must be {PROOF_TYP}.")
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS or algorithm not in algorithms:
        raise InvalidProof("The DPoP proof's alg must be one of " + ", ".join(algorithms) + ".")
    jwk = _public_jwk(header, algorithm)
    try:
        key = pyjwt.PyJWK(jwk, algorithm=algorithm).key
        claims = pyjwt.decode(
            proof,
            key,
            algorithms=[algorithm],
            # iat is judged below, both ways; exp and nbf are not part of a proof (if present,
            # PyJWT still holds the proof to them).
            options={"verify_aud": False, "verify_iat": False},
        )
    except (pyjwt.PyJWTError, ValueError, TypeError, KeyError):
        raise InvalidProof("The DPoP proof's signature does not verify with its jwk.") from None
    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise InvalidProof("The DPoP proof has no valid jti.")
    if htm != method:
        raise InvalidProof("The DPoP proof is for another HTTP method.")
    if not isinstance(htu, str) or _normalized(htu) != _normalized(uri):
        raise InvalidProof("The DPoP proof is for another URI.")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise InvalidProof("The DPoP proof has no valid iat.")
    if abs(time.time() - iat) > PROOF_WINDOW_SECONDS:
        raise InvalidProof("The DPoP proof is not fresh (iat).")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
            ath.encode("ascii", "replace"), access_token_hash(access_token).encode("ascii")
        ):
            raise InvalidProof("The DPoP proof is for another access token (ath).")
    if require_nonce and not nonce_valid(claims.get("nonce")):
        raise NonceRequired("The DPoP proof must carry the server's current nonce.")
    jkt = jwk_thumbprint(jwk)
    digest = hashlib.sha256(f"{jkt}:{jti}".encode("utf-8", "surrogatepass")).hexdigest()
    # A proof accepted now could still be accepted until its iat plus the window.
    if not cache.add(f"{_JTI_PREFIX}{digest}", 1, timeout=2 * PROOF_WINDOW_SECONDS + 1):
        raise InvalidProof("The DPoP proof was used before (jti).", replayed=True)
    return jkt


def strict_algorithms(client: Any) -> tuple[str, ...]:
    """The proof algorithms `client` may use: FAPI 2.0's for a high-security client."""
    return HIGH_SECURITY_ALGORITHMS if client.high_security else tuple(ALGORITHMS)


def record_refusal(*, request: Any, reason: str, client: Any = None, subject: Any = None) -> None:
    """The audit row of a refused proof or bound token: someone spent a proof again, or a
    token bound to a key without that key (a stolen token, or a client that lost its key)."""
    record_event(
        type=AuditEvent.Type.TOKEN_REPLAY,
        request=request,
        client=client,
        subject=subject,
        reason=reason,
    )
