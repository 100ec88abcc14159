"""Validator policy for the authorization side: authorize requests, sessions, ID token claims.

Mixed into `oauth_clients.oidc.validator.IdPOAuth2Validator`. The signed-in user and the session's
binding reach the oauthlib request through `oauth_clients.oidc.backend.IdPOAuthLibCore`
(`request.user`, and `grant_state(request).binding`: sid, auth_time, amr, acr); at the token
endpoint an ID token takes them from the code's Grant (`grant_state(request).grant`), on a refresh
from `request.refresh_token_instance` (OIDC Core §12.2).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone
from jwcrypto import jwk, jwt
from jwcrypto.common import JWException
from oauth2_provider.models import get_id_token_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem
from oauthlib.oauth2.rfc6749 import errors

from accounts.mfa_policy import has_enrolled_second_factor
from accounts.sessions import authentication_context, has_second_factor
from oauth_clients.key_store import published_pems, sign_jwt
from oauth_clients.keys import ES256, RS256, key_algorithm, key_id
from oauth_clients.models import Client
from oauth_clients.oidc.app_access import (
    audit_request,
    may_use_app,
    record_access_denied,
    request_groups,
)
from oauth_clients.oidc.backend import max_age_exceeded, parse_max_age, requested_acr_values
from oauth_clients.oidc.claims import build_claims, supported_claims
from oauth_clients.oidc.consent import consent_covers
from oauth_clients.oidc.device import DEVICE_CODE_GRANT
from oauth_clients.oidc.grant_state import IDTokenIssued, grant_state

# Per-client choice (Client.algorithm): RS256 by default, ES256 for clients that take it.
ID_TOKEN_ALGORITHMS = ["RS256", "ES256"]
# RFC 8252 §7.3: a native app's loopback redirect URI matches on any port.
LOOPBACK_REDIRECT_HOSTS = frozenset({"127.0.0.1", "::1"})


def redirect_uri_registered(uri: str, registered: list[str], *, kind: str) -> bool:
    """OIDC Core §3.1.2.1 / RFC 9700 §4.1.3: simple string comparison with a registered URI.

    The only exception is RFC 8252 §7.3, for native apps (`kind` is `Client.Kind.NATIVE`) only:
    an http loopback IP redirect URI matches with any port, everything else (scheme, host, path,
    query) compared exactly. Every other kind of app gets the exact match: a web app's loopback
    URI names one fixed port, and another port is another program on that machine.
    """
    if uri in registered:
        return True
    if kind != Client.Kind.NATIVE or not uri.startswith("http://") or "#" in uri:
        return False
    try:
        requested = urlsplit(uri)
        if "@" in requested.netloc or requested.hostname not in LOOPBACK_REDIRECT_HOSTS:
            return False
        requested.port  # noqa: B018 (a malformed port raises ValueError here)
    except ValueError:
        return False
    for candidate in registered:
        if not candidate.startswith("http://"):
            continue
        allowed = urlsplit(candidate)
        if (
            allowed.hostname == requested.hostname
            and "@" not in allowed.netloc
            and allowed.path == requested.path
            and ("?" in candidate) == ("?" in uri)
            and allowed.query == requested.query
        ):
            return True
    return False


def published_keys() -> jwk.JWKSet:
    """Every key still in JWKS (RS256 and ES256): the active ones and those kept after a
    rotation (oauth_clients.keys)."""
    keys = jwk.JWKSet()
    for pem in published_pems():
        if pem:
            key = jwk_from_pem(pem)
            public = jwk.JWK.from_json(key.export_public())
            public.update(kid=key_id(pem), alg=key_algorithm(pem), use="sig")
            keys.add(public)
    return keys


def decode_id_token(
    token: str, *, issuer: str | None, accept_expired: bool
) -> dict[str, Any] | None:
    """The claims of an ID token we signed with any published key (and `issuer`), or None.

    `accept_expired` serves `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2), which
    names a past session and may well have expired.
    """
    if not token or len(token) > 16_384:
        return None
    check_claims: dict[str, Any] | None = {} if accept_expired else None
    try:
        decoded = jwt.JWT(
            jwt=token,
            key=published_keys(),
            algs=ID_TOKEN_ALGORITHMS,
            check_claims=check_claims,
        )
        claims = json.loads(decoded.claims)
    except (JWException, ValueError, TypeError, KeyError):
        return None
    if not isinstance(claims, dict) or (issuer is not None and claims.get("iss") != issuer):
        return None
    return claims


def _unix_time(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


class AuthorizationPolicyMixin:
    """Overrides of DOT's OAuth2Validator for /authorize, prompt/max_age and ID token contents."""

    # --- Authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2)

    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Any, *a, **kw):
        client = request.client
        return client is not None and redirect_uri_registered(
            redirect_uri, client.redirect_uris.split(), kind=client.kind
        )

    def get_default_redirect_uri(self, client_id: str, request: Any, *args, **kwargs):
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED; never fall back to a registered one.
        return None

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        # Authorization code flow only (RFC 9700 §2.1.2: no implicit; no hybrid either).
        if response_type != "code":
            raise errors.UnsupportedResponseTypeError(request=request)
        return client.allows_grant_type(Client.GRANT_AUTHORIZATION_CODE)

    def _allowed_scopes(self, client: Client) -> set[str]:
        return set(client.allowed_scopes.split()) & set(oauth2_settings.SCOPES)

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        # Only the scopes an admin allowed this client (Client.allowed_scopes), else invalid_scope.
        return set(scopes) <= self._allowed_scopes(client) and super().validate_scopes(
            client_id, scopes, client, request, *args, **kwargs
        )

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        defaults = super().get_default_scopes(client_id, request, *args, **kwargs)
        client = request.client
        if client is None:
            return defaults
        allowed = self._allowed_scopes(client)
        return [scope for scope in defaults if scope in allowed]

    # --- prompt, max_age, id_token_hint (OIDC Core §3.1.2.1, §3.1.2.6)

    def validate_silent_login(self, request: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        try:
            max_age = parse_max_age(request.max_age)
        except ValueError:
            max_age = None  # reported as invalid_request once the silent checks pass
        binding = grant_state(request).binding
        auth_time = binding.auth_time
        if max_age_exceeded(max_age=max_age, auth_time=auth_time, now=int(time.time())):
            return False
        client = request.client
        # Client.requires_mfa, or `acr_values` asking for a second factor the user has: a
        # password-only session cannot sign in without a prompt.
        wants_second_factor = (client is not None and client.requires_mfa) or (
            bool(requested_acr_values(request.acr_values)) and has_enrolled_second_factor(user)
        )
        return not (wants_second_factor and not has_second_factor(binding.amr))

    def validate_silent_authorization(self, request: Any) -> bool:
        """prompt=none: consent must already cover the request (else `consent_required`).
        A person who may not use the app gets `access_denied` (RFC 6749 §4.1.2.1: "the
        resource owner or authorization server denied the request"): no other answer of
        OIDC Core §3.1.2.6 fits, and asking for a login or consent would not help."""
        user, client = request.user, request.client
        if not may_use_app(request=request, user=user, client=client):
            record_access_denied(
                user=user, client=client, request=audit_request(request), prompt_none=True
            )
            raise errors.AccessDeniedError(request=request)
        return consent_covers(user=user, client=client, scopes=request.scopes)

    def validate_user_match(self, id_token_hint, scopes, claims, request) -> bool:
        if not id_token_hint:
            return True
        hint = decode_id_token(
            id_token_hint, issuer=oauth2_settings.oidc_issuer(request), accept_expired=True
        )
        if hint is None:
            return False
        user = request.user
        if user is None or not user.is_authenticated:
            # Nobody signed in yet: the sign-in comes first and the hint is checked again after.
            return True
        return hint.get("sub") == str(user.pk)

    # --- Claims (OIDC Core §5.4) from the one pure function

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user, client = request.user, request.client
        claims = build_claims(
            user=user,
            scopes=request.scopes or [],
            client=client if isinstance(client, Client) else None,
            groups=request_groups(request, user),
        )
        claims.pop("sub", None)
        return claims

    def get_claim_dict(self, request: Any) -> dict[str, Any]:
        return {"sub": str(request.user.pk), **self.get_additional_claims(request)}

    def get_oidc_claims(self, token, token_handler, request) -> dict[str, Any]:
        # build_claims already released claims by scope; nothing to filter here.
        return dict(self.get_claim_dict(request))

    def get_userinfo_claims(self, request: Any) -> dict[str, Any]:
        return self.get_oidc_claims(request.access_token, None, request)

    def get_discovery_claims(self, request: Any) -> list[str]:
        return supported_claims()

    # --- ID token (OIDC Core §2, §3.1.3.6, §12.2)

    def get_id_token_dictionary(self, token, token_handler, request):
        claims = self.get_oidc_claims(token, token_handler, request)
        lifetime = request.client.id_token_lifetime or oauth2_settings.ID_TOKEN_EXPIRE_SECONDS
        expiration_time = timezone.now() + timedelta(seconds=int(lifetime))
        sid, auth_time, amr = id_token_session(request)
        claims.update(
            iss=self.get_oidc_issuer_endpoint(request),
            exp=int(expiration_time.timestamp()),
            jti=str(uuid.uuid4()),
        )
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if sid:
            claims["sid"] = sid
        if amr:
            claims["amr"] = amr
            # OIDC Core §2 `acr`: what the methods amount to (the Grant/refresh token keep amr).
            acr = authentication_context(amr)
            if acr:
                claims["acr"] = acr
        return claims, expiration_time

    def finalize_id_token(self, id_token, token, token_handler, request) -> str:
        claims, expiration_time = self.get_id_token_dictionary(token, token_handler, request)
        payload = {**id_token, **claims}
        if request.grant_type == "refresh_token":
            # OIDC Core §12.2: a refreshed ID token SHOULD NOT carry a nonce.
            payload.pop("nonce", None)
        elif "nonce" not in payload and request.nonce:
            payload["nonce"] = request.nonce
        algorithm = ES256 if request.client.algorithm == ES256 else RS256
        signed = sign_jwt(payload, algorithm=algorithm)
        issued = IDTokenIssued(jti=payload["jti"], expires=expiration_time)
        if request.grant_type in ("refresh_token", "authorization_code", DEVICE_CODE_GRANT):
            # Its row is written with the rest of the exchange or rotation by the token store
            # (or not at all when it loses a race): oauth_clients/oidc/store.py.
            grant_state(request).id_token = issued
        else:
            # No other grant issues ID tokens here (code flow only: `validate_response_type`);
            # one that did would have no store write to join.
            build_id_token(request, issued).save(force_insert=True)
        return signed

    def validate_id_token(self, token: str, scopes: list[str], request: Any) -> bool:
        """oauthlib's check of an ID token presented as a bearer token (its `JWTToken`, DOT's
        `verify_request`); DOT's, with the token verified against every published key, so an
        ES256 token or one signed before a key rotation is known."""
        if not token:
            return False
        id_token = load_id_token(token)
        if id_token is None or not id_token.allow_scopes(scopes):
            return False
        request.client = id_token.application
        request.user = id_token.user
        request.scopes = scopes
        request.access_token = id_token
        return True


def id_token_session(request: Any) -> tuple[str, int | None, list[str]]:
    """(sid, auth_time, amr) of the sign-in an ID token descends from: the Grant at a code
    exchange, the refresh token on a refresh (OIDC Core §12.2), the approved device
    authorization on a device code exchange (RFC 8628), else this browser session."""
    state = grant_state(request)
    source: Any = state.grant or state.device
    if source is None and request.grant_type == "refresh_token":
        source = getattr(request, "refresh_token_instance", None)
    if source is not None:
        return source.sid or "", _unix_time(source.auth_time), list(source.amr or [])
    binding = state.binding
    return binding.sid, binding.auth_time, list(binding.amr)


def build_id_token(request: Any, issued: IDTokenIssued) -> Any:
    """The unsaved row of an ID token signed for this request (its `jti` links it)."""
    sid, _auth_time, _amr = id_token_session(request)
    return get_id_token_model()(
        user=request.user,
        scope=request.scope or " ".join(request.scopes),
        expires=issued.expires,
        jti=issued.jti,
        application=request.client,
        sid=sid,
    )


def load_id_token(token: str) -> Any:
    """The row of an ID token we signed with a published key and that has not expired."""
    claims = decode_id_token(token, issuer=None, accept_expired=False)
    if claims is None:
        return None
    return get_id_token_model().objects.filter(jti=claims.get("jti")).first()
