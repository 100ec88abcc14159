"""URL map of the OpenID Connect provider: DOT's views we keep plus our own endpoint views.

Mounted at the site root by `idp/urls.py` under DOT's namespace ("oauth2_provider") so DOT's own
`reverse("oauth2_provider:...")` calls (issuer, discovery, metadata) keep resolving. Endpoints live
under `o/`; the discovery documents live at `<issuer>/.well-known/...` (OIDC Discovery §4,
RFC 8414 §3). Not mounted on purpose: DOT's self-service application management and
authorized-token pages (clients are managed in the admin) and dynamic client registration.
DOT's device views are replaced by ours (oauth_clients/oidc/views/device.py: codes stored
hashed, brute-force limits, `slow_down`), under DOT's path and names; the person's page is the
short `/device` RFC 8628 §3.2 asks for.
"""

from __future__ import annotations

from django.urls import path

from oauth_clients.oidc import views
from oauth_clients.oidc.views import device
from oauth_clients.oidc.views.authorize import AuthorizeView
from oauth_clients.oidc.views.logged_out import logged_out
from oauth_clients.oidc.views.logout import LogoutView
from oauth_clients.oidc.views.par import pushed_authorization_request

app_name = "oauth2_provider"

urlpatterns = [
    # Authorization side.
    path("o/authorize/", AuthorizeView.as_view(), name="authorize"),
    path("o/logout/", LogoutView.as_view(), name="rp-initiated-logout"),
    # Pushed authorization requests (RFC 9126): the request first, then the browser to authorize.
    path("o/par/", pushed_authorization_request, name="pushed-authorization-request"),
    # Front-channel logout's signed-out page (OIDC Front-Channel Logout 1.0 §3).
    path("o/logged-out/", logged_out, name="logged-out"),
    # Token side.
    path("o/token/", views.TokenView.as_view(), name="token"),
    path("o/revoke_token/", views.RevocationView.as_view(), name="revoke-token"),
    # The device authorization grant (RFC 8628): the device's endpoint and the person's pages.
    path("o/device-authorization/", device.device_authorization, name="device-authorization"),
    path("device", device.enter_code, name="device"),
    path("device/confirm", device.confirm, name="device-confirm"),
    path("device/done", device.done, name="device-done"),
    path("o/introspect/", views.IntrospectionView.as_view(), name="introspect"),
    path("o/userinfo/", views.UserInfoView.as_view(), name="user-info"),
    path(".well-known/jwks.json", views.JwksView.as_view(), name="jwks-info"),
    # Discovery at the issuer (OIDC Discovery §4; RFC 8414 §3).
    path(
        ".well-known/openid-configuration",
        views.DiscoveryView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(
        ".well-known/oauth-authorization-server",
        views.DiscoveryView.as_view(),
        name="oauth-server-metadata",
    ),
]
