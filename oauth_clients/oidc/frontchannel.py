"""OpenID Connect Front-Channel Logout 1.0 §3: the signed-out page loads each app's logout URI.

For apps that cannot receive back-channel calls. When a session ends in the browser (logout
here, RP-initiated logout) and an app it signed in to registered a `frontchannel_logout_uri`,
the user passes through our signed-out page, which renders that URI in a hidden, sandboxed
iframe with `iss` and `sid` (§3: both or neither), then continues to where the user was going.
Which apps, which session and where next travel in a signed, short-lived parameter (computed
before the session's tokens are revoked), so the page needs no session of its own. Browsers
that block third-party cookies may keep such a frame from signing the user out; back-channel
logout has no such limit.

SAML apps of the session with a Redirect or POST single logout URL get their LogoutRequest in
a frame of the same page (SAML 2.0 Profiles §4.4.3.3; `oauth_clients.saml.slo_delivery`): the
signed parameter carries the key of what was prepared before the session ended, and each
request is built and signed when the page is shown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core import signing
from django.urls import reverse
from oauthlib.common import add_params_to_uri

from oauth_clients.models import Client
from oauth_clients.oidc.backchannel import REASON_SESSION_ENDED, issuer, session_client_ids
from oauth_clients.saml.slo_delivery import SamlFrame, browser_frames, prepare_browser_logout

SIGNING_SALT = "oauth_clients.oidc.frontchannel.logged-out"
# The signed-out page link is followed at once; it is refused after this many seconds.
LINK_MAX_AGE_SECONDS = 300


def frontchannel_clients(*, sid: str) -> list[Client]:
    """Active apps with a front-channel logout URI that session `sid` signed in to."""
    ids = session_client_ids(sid=sid)
    if not ids:
        return []
    return list(
        Client.objects.filter(pk__in=ids, is_active=True)
        .exclude(frontchannel_logout_uri="")
        .order_by("name", "pk")
    )


def logged_out_url(
    *, sid: str, next_url: str, reason: str = REASON_SESSION_ENDED, user: Any = None
) -> str | None:
    """Our signed-out page for session `sid` when an app of it wants front-channel logout (or
    is a SAML app to tell through the browser), else None (the caller redirects to `next_url`
    as before). Call it before the session ends."""
    clients = frontchannel_clients(sid=sid)
    saml_key = prepare_browser_logout(sid=sid, user=user, reason=reason) if sid else None
    if not clients and not saml_key:
        return None
    data: dict[str, Any] = {"c": [client.pk for client in clients], "s": sid, "n": next_url}
    if saml_key:
        data["a"] = saml_key
    value = signing.dumps(data, salt=SIGNING_SALT)
    return f"{reverse('oauth2_provider:logged-out')}?{urlencode({'t': value})}"


def read_logged_out(value: str) -> tuple[list[str], str] | None:
    """(the iframe URIs, where to go next) from our signed parameter, or None."""
    try:
        data: Any = signing.loads(value, salt=SIGNING_SALT, max_age=LINK_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    client_ids, sid, next_url = data.get("c"), data.get("s"), data.get("n")
    if (
        not isinstance(client_ids, list)
        or not isinstance(sid, str)
        or not isinstance(next_url, str)
    ):
        return None
    clients = Client.objects.filter(pk__in=client_ids, is_active=True).exclude(
        frontchannel_logout_uri=""
    )
    uris = [
        add_params_to_uri(client.frontchannel_logout_uri, [("iss", issuer()), ("sid", sid)])
        for client in clients.order_by("name", "pk")
    ]
    saml_key = data.get("a")
    if isinstance(saml_key, str):
        uris.extend(browser_frames(saml_key))
    return uris, next_url


def frame_origins(uris: list[str]) -> list[str]:
    """The origins the signed-out page may frame (its own CSP `frame-src`)."""
    origins: dict[str, None] = {}
    for uri in uris:
        if isinstance(uri, SamlFrame):
            # Where the frame goes next too: the app's logout URL, back here with its answer.
            for origin in uri.origins:
                origins.setdefault(origin, None)
            continue
        parts = urlsplit(uri)
        origins.setdefault(f"{parts.scheme}://{parts.netloc}", None)
    return list(origins)
