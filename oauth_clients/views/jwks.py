"""JWKS endpoint (RFC 7517 §5, OIDC Discovery §3 `jwks_uri`): every published key with its kid.

Cacheable by clients (Cache-Control max-age) and kept in Django's cache under a key that embeds
the key-set fingerprint, so a rotation (new process, new key set) is never served stale.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control
from django.utils.decorators import method_decorator
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings

from oauth_clients.keys import jwks_document, keys_fingerprint, published_pems

CACHE_PREFIX = "oidc:jwks:"


def cached_jwks() -> tuple[dict[str, Any], str]:
    """(JWK Set, fingerprint) for the keys this process publishes."""
    pems = published_pems()
    fingerprint = keys_fingerprint(pems)
    document = cache.get(CACHE_PREFIX + fingerprint)
    if document is None:
        document = jwks_document(pems)
        cache.set(CACHE_PREFIX + fingerprint, document, timeout=24 * 3600)
    return document, fingerprint


@method_decorator(login_not_required, name="dispatch")
class JwksView(View):
    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        document, fingerprint = cached_jwks()
        etag = f'"{fingerprint}"'
        if request.headers.get("If-None-Match") == etag:
            response = HttpResponse(status=304)
        else:
            response = JsonResponse(document)
        response["ETag"] = etag
        response["Access-Control-Allow-Origin"] = "*"
        max_age = oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS
        patch_cache_control(response, public=True, max_age=max_age)
        return response
