"""Our OIDC endpoint views, one module per endpoint (DOT's where we keep them, see urls.py)."""

from oauth_clients.oidc.views.discovery import DiscoveryView
from oauth_clients.oidc.views.introspection import IntrospectionView
from oauth_clients.oidc.views.jwks import JwksView
from oauth_clients.oidc.views.revocation import RevocationView
from oauth_clients.oidc.views.token import TokenView
from oauth_clients.oidc.views.userinfo import UserInfoView

__all__ = [
    "DiscoveryView",
    "IntrospectionView",
    "JwksView",
    "RevocationView",
    "TokenView",
    "UserInfoView",
]
