"""A client's public keys for `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): rules and fetch.

A client registers its JWK Set inline (`Client.jwks`) or by URL (`Client.jwks_uri`). The URL is
fetched through the SSRF-safe sender (`oauth_clients.outbound`: no private address unless the
app may, no redirect, bounded time and size) and the set kept in the shared cache for
`JWKS_CACHE_SECONDS`, so every process sees one fetch; `client_jwks(refresh=True)` refetches it
(the engine asks once when an assertion names a `kid` the cached set lacks, at most once per
`REFETCH_INTERVAL_SECONDS` per client, so unknown kids cannot make us hammer the app).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.core.cache import cache
from django.utils.translation import gettext as _
from jwcrypto import jwk

from oauth_clients import uri_rules
from oauth_clients.models import Client
from oauth_clients.outbound import check_destination, send_pinned

logger = logging.getLogger(__name__)

# RFC 7518 §3.3, §3.4, §3.5: the assertion algorithms accepted (never `none`, never HMAC: a
# hashed secret cannot be an HMAC key, and a public key used as one is the classic confusion).
ASSERTION_ALGORITHMS = ("RS256", "PS256", "ES256")
MAX_KEYS = 20
JWKS_MAX_BYTES = 64 * 1024
JWKS_FETCH_TIMEOUT_SECONDS = 3.0
JWKS_CACHE_SECONDS = 300
REFETCH_INTERVAL_SECONDS = 30
# Members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CACHE_PREFIX = "oauth:client-jwks:v1:"


class JwksUnavailable(Exception):
    """The client's JWK Set could not be fetched or is not a valid set of public keys."""


def jwks_problem(value: Any) -> str | None:
    """Why `value` is not a usable JWK Set of public signing keys (RSA of 2048 bits or more,
    EC P-256), or None when it is."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        return _('a JWK Set is a JSON object with a "keys" list')
    keys = value["keys"]
    if not keys or len(keys) > MAX_KEYS:
        return _("a JWK Set needs between 1 and %(max)d keys") % {"max": MAX_KEYS}
    for entry in keys:
        if not isinstance(entry, dict):
            return _("every key must be a JSON object")
        if PRIVATE_MEMBERS & set(entry):
            return _("the set contains a private or symmetric key: register public keys only")
        if entry.get("use") not in (None, "sig"):
            return _("every key must be a signing key (use: sig)")
        try:
            key = jwk.JWK(**entry)
        except Exception:  # jwcrypto raises several types for a malformed key
            return _("a key cannot be read as a JWK")
        kty = key.get("kty")
        if kty == "RSA":
            if key.get_op_key("verify").key_size < 2048:
                return _("an RSA key must have at least 2048 bits")
        elif kty != "EC" or key.get("crv") != "P-256":
            return _("only RSA and EC P-256 keys are accepted")
    return None


def jwks_uri_problem(
    uri: str, *, allow_private_network: bool, resolver: uri_rules.Resolver | None = None
) -> str | None:
    """Why the IdP may not fetch a client's keys from `uri` (the back-channel rules: https, http
    on loopback only, no private-network address unless the app is allowed them)."""
    return uri_rules.metadata_url_problem(
        uri, allow_private_network=allow_private_network, resolver=resolver
    )


def _cache_key(client: Client) -> str:
    digest = hashlib.sha256(f"{client.pk}:{client.jwks_uri}".encode()).hexdigest()[:40]
    return f"{_CACHE_PREFIX}{digest}"


def fetch_jwks(client: Client) -> dict[str, Any]:
    """The JWK Set at the client's `jwks_uri`, fetched now; JwksUnavailable with the reason."""
    uri = client.jwks_uri
    problem = jwks_uri_problem(uri, allow_private_network=client.allow_private_network)
    if problem:
        raise JwksUnavailable(problem)
    address, refusal, _retry = check_destination(
        uri, allow_private_network=client.allow_private_network
    )
    if address is None:
        raise JwksUnavailable(refusal)
    answer = send_pinned(
        method="GET",
        uri=uri,
        address=address,
        timeout=JWKS_FETCH_TIMEOUT_SECONDS,
        max_bytes=JWKS_MAX_BYTES,
        headers={"Accept": "application/json"},
    )
    if answer.error:
        raise JwksUnavailable(answer.error)
    if answer.status_code != 200:  # redirects are never followed (RFC 7523 leaves it to us)
        raise JwksUnavailable(f"the JWKS URL answered HTTP {answer.status_code}")
    if answer.truncated:
        raise JwksUnavailable("the JWKS document is too large")
    try:
        document = json.loads(answer.body)
    except ValueError as exc:
        raise JwksUnavailable("the JWKS document is not JSON") from exc
    problem = jwks_problem(document)
    if problem:
        raise JwksUnavailable(str(problem))
    return dict(document)


def client_jwks(client: Client, *, refresh: bool = False) -> dict[str, Any] | None:
    """The client's JWK Set: inline, or from its `jwks_uri` through the shared cache (fetched
    on a miss; with `refresh`, again unless fetched in the last REFETCH_INTERVAL_SECONDS).
    None when it has none or it cannot be fetched (logged)."""
    if client.jwks:
        return dict(client.jwks)
    if not client.jwks_uri:
        return None
    key = _cache_key(client)
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return dict(cached)
    elif not cache.add(f"{key}:refetched", 1, timeout=REFETCH_INTERVAL_SECONDS):
        return None  # refetched moments ago: the kid is unknown to the app's own set too
    try:
        document = fetch_jwks(client)
    except JwksUnavailable as exc:
        logger.warning("jwks_uri of client %s unusable: %s", client.client_id, exc)
        return None
    cache.set(key, document, timeout=JWKS_CACHE_SECONDS)
    return document


def read_jwks_source(source: str) -> dict[str, str | dict[str, Any]]:
    """`--jwks FILE_OR_URL` of the command line: {"jwks_uri": url} or {"jwks": the file's
    set}; ValueError when the file is not JSON."""
    if source.lower().startswith(("https://", "http://")):
        return {"jwks_uri": source}
    with open(source, encoding="utf-8") as handle:
        return {"jwks": json.load(handle)}
