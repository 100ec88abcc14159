"""JWKS endpoint (RFC 7517 §5, OIDC Discovery §3 `jwks_uri`): every published key with its kid.

Cacheable by clients (Cache-Control max-age, an ETag of the key-set fingerprint); encoded once
per process (`oauth_clients.oidc.published`), so a rotation (new process, new key set) is never
served stale.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.utils.decorators import method_decorator
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings

from oauth_clients.key_store import published_pems
from oauth_clients.keys import jwks_document, keys_fingerprint
from oauth_clients.oidc.published import json_body


@method_decorator(login_not_required, name="dispatch")
class JwksView(View):
    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pems = published_pems()
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
