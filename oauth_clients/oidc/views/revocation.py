"""Token revocation (RFC 7009): DOT's view behind our request checks, in one transaction.

What may be revoked (only the caller's own tokens; a refresh token takes its whole grant with
it) is `TokenPolicyMixin.revoke_token`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from oauth2_provider import views as dot_views

from oauth_clients.oidc.views.token import (
    back_channel_view,
    form_problem,
    oauthlib_response,
    spa_cors,
)


class RevocationView(dot_views.RevokeTokenView):
    """POST /o/revoke_token/ (RFC 7009 §2.1)."""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # CSRF-exempt, no login required, never cached: decorated once (`back_channel_view`);
        # single-page apps revoke from the browser (`spa_cors`).
        return back_channel_view(spa_cors(super().as_view(**initkwargs), methods=("POST",)))

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        problem = form_problem(request)
        if problem is not None:
            return problem
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _url, headers, body, status = self.create_revocation_response(request)
        return oauthlib_response(headers, body, status)
