"""JWKS endpoint (RFC 7517 §5, OIDC Discovery §3 `jwks_uri`): every published key with its kid.

Cacheable by clients (Cache-Control max-age, an ETag of the key-set fingerprint); encoded once
per process (`oauth_clients.oidc.published`) under the key set's fingerprint, so a rotation
(database keys: within seconds, oauth_clients/key_store.py; files: at the restart) is never served
stale.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control
from django.utils.decorators import method_decorator
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings

from oauth_clients.key_store import KeyStoreUnreadable, published_pems
from oauth_clients.keys import jwks_document, keys_fingerprint
from oauth_clients.oidc.published import json_body

logger = logging.getLogger(__name__)


@method_decorator(login_not_required, name="dispatch")
class JwksView(View):
    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            pems = published_pems()
        except KeyStoreUnreadable:
            # This process never read its database keys (a wrong IDP_KEY_ENCRYPTION_KEY, logged
            # by the key store): no key set to publish, and an empty one would tell apps every
            # key is gone. Apps retry a 503 (RFC 9110 §15.6.4).
            logger.error("JWKS: the database signing keys cannot be read", exc_info=True)
            unavailable = JsonResponse(
                {"error": "temporarily_unavailable", "error_description": "keys unavailable"},
                status=503,
            )
            unavailable["Retry-After"] = "30"
            return unavailable
        etag = f'"{keys_fingerprint(pems)}"'
        if request.headers.get("If-None-Match") == etag:
            response = HttpResponse(status=304)
        else:
            body = json_body("jwks", lambda: jwks_document(pems))
            response = HttpResponse(body, content_type="application/json")
        response["ETag"] = etag
        response["Access-Control-Allow-Origin"] = "*"
        max_age = oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS
        patch_cache_control(response, public=True, max_age=max_age)
        return response
