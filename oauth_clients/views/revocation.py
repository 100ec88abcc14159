"""Token revocation (RFC 7009): DOT's view behind our request checks, in one transaction.

What may be revoked (only the caller's own tokens; a refresh token takes its whole grant with
it) is `TokenPolicyMixin.revoke_token`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.compat import login_not_required

from oauth_clients.views.token import form_problem, oauthlib_response


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
@method_decorator(never_cache, name="dispatch")
class RevocationView(dot_views.RevokeTokenView):
    """POST /o/revoke_token/ (RFC 7009 §2.1)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        problem = form_problem(request)
        if problem is not None:
            return problem
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _url, headers, body, status = self.create_revocation_response(request)
        return oauthlib_response(headers, body, status)
