"""The demo's pages: the button, the claims it received, refresh, sign-out, back-channel logout."""

from __future__ import annotations

import json
import logging
import secrets
from http import HTTPStatus
from typing import Any

from allauth.socialaccount.models import SocialAccount, SocialToken
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from demo import oidc
from demo.adapter import ID_TOKEN_SESSION_KEY
from demo.logout_tokens import LogoutTokenError, seconds_until_expiry, verify_logout_token
from demo.models import OidcSession

logger = logging.getLogger(__name__)
LOGOUT_STATE_KEY = "demo_logout_state"


def demo_context(request: HttpRequest) -> dict[str, Any]:
    button = f"{settings.IDP_ISSUER}/static/idp/button/"
    return {
        "idp_issuer": settings.IDP_ISSUER,
        "button_css_url": button + "button.css",
        "button_logo_url": button + "logo-light.svg",
        "provider_id": settings.OIDC_PROVIDER_ID,
        "registered": bool(settings.OIDC_CLIENT_ID),
    }


def _account(user: Any) -> SocialAccount | None:
    return SocialAccount.objects.filter(user=user, provider=settings.OIDC_PROVIDER_ID).first()


@never_cache
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        state = request.GET.get("state")
        expected = request.session.pop(LOGOUT_STATE_KEY, None)
        if state and expected and secrets.compare_digest(state, expected):
            messages.success(request, "You are signed out here and at the company IdP.")
        return render(request, "demo/home.html")
    account = _account(request.user)
    extra = account.extra_data if account else {}
    token = SocialToken.objects.filter(account=account).first() if account else None
    context = {
        "id_token_claims": json.dumps(extra.get("id_token", {}), indent=2, sort_keys=True),
        "userinfo": json.dumps(extra.get("userinfo", {}), indent=2, sort_keys=True),
        "token": token,
        "has_refresh_token": bool(token and token.token_secret),
    }
    return render(request, "demo/home.html", context)


@require_POST
@login_required
def refresh(request: HttpRequest) -> HttpResponse:
    """RFC 6749 §6 with the stored refresh token; the IdP rotates it (RFC 9700 §4.14.2)."""
    account = _account(request.user)
    token = SocialToken.objects.filter(account=account).first() if account else None
    if token is None or not token.token_secret:
        messages.error(request, "There is no refresh token to use.")
        return redirect("home")
    try:
        answer = oidc.refresh_tokens(refresh_token=token.token_secret)
    except oidc.IdPError as error:
        messages.error(request, f"The IdP refused the refresh: {error}")
        return redirect("home")
    token.token = answer["access_token"]
    token.token_secret = answer.get("refresh_token", token.token_secret)
    token.expires_at = oidc.expiry(answer)
    token.save()
    if answer.get("id_token"):
        request.session[ID_TOKEN_SESSION_KEY] = answer["id_token"]
    messages.success(request, "Tokens refreshed: a new access token and a new refresh token.")
    return redirect("home")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out here, then at the IdP (RP-Initiated Logout 1.0), which sends the browser back."""
    id_token = request.session.get(ID_TOKEN_SESSION_KEY, "")
    OidcSession.objects.filter(session_key=request.session.session_key).delete()
    logout(request)
    state = secrets.token_urlsafe(16)
    request.session[LOGOUT_STATE_KEY] = state
    try:
        return HttpResponseRedirect(oidc.end_session_url(id_token=id_token, state=state))
    except oidc.IdPError:
        messages.error(request, "Signed out here; the IdP could not be reached to sign out there.")
        return redirect("home")


def _logout_error(description: str) -> JsonResponse:
    response = JsonResponse(
        {"error": "invalid_request", "error_description": description},
        status=HTTPStatus.BAD_REQUEST,
    )
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # called by the IdP's server, authenticated by the signed logout token
@never_cache
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    """OpenID Connect Back-Channel Logout 1.0 §2.5 to §2.8: verify, end the sessions, answer 200."""
    if request.method != "POST":
        response = _logout_error("use POST")
        response.status_code = HTTPStatus.METHOD_NOT_ALLOWED
        response["Allow"] = "POST"
        return response
    if request.content_type != "application/x-www-form-urlencoded":
        return _logout_error("send logout_token as application/x-www-form-urlencoded")
    tokens = request.POST.getlist("logout_token")
    if len(tokens) != 1 or not tokens[0] or len(tokens[0]) > 16_384:
        return _logout_error("send exactly one logout_token")
    try:
        claims = _verify(tokens[0])
    except LogoutTokenError as error:
        logger.warning("back-channel logout refused: %s", error)
        return _logout_error(str(error))
    except oidc.IdPError as error:
        logger.warning("back-channel logout: IdP keys unavailable: %s", error)
        return _logout_error("the IdP's keys could not be fetched")
    # §2.6 step 10 (optional): a jti seen before is a replay.
    if not cache.add(f"demo:bcl-jti:{claims.jti}", 1, seconds_until_expiry(claims)):
        return _logout_error("this logout token was already used")
    ended = end_idp_sessions(sub=claims.sub, sid=claims.sid)
    logger.info("back-channel logout: %d session(s) ended", ended)
    response = HttpResponse(status=HTTPStatus.OK)
    response["Cache-Control"] = "no-store"
    return response


def _verify(token: str):
    kwargs = {"issuer": settings.IDP_ISSUER, "client_id": settings.OIDC_CLIENT_ID}
    try:
        return verify_logout_token(token, jwks=oidc.jwks(), **kwargs)
    except LogoutTokenError as error:
        if "kid" not in str(error):
            raise
        # A kid we do not know yet: the IdP may have rotated its key; fetch the JWKS once more.
        return verify_logout_token(token, jwks=oidc.jwks(refresh=True), **kwargs)


@transaction.atomic
def end_idp_sessions(*, sub: str, sid: str) -> int:
    """End every local session of that IdP session (sid), or of that user when only sub is sent."""
    links = OidcSession.objects.select_for_update()
    if sid:
        links = links.filter(sid=sid)
        if sub:
            links = links.filter(sub=sub)
    else:
        links = links.filter(sub=sub)
    keys = [link.session_key for link in links]
    ended, _ = Session.objects.filter(session_key__in=keys).delete()
    links.delete()
    return ended
