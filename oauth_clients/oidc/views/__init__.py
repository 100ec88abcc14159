"""Our OIDC endpoint views, one module per endpoint (DOT's where we keep them, see urls.py)."""

from oauth_clients.views.discovery import DiscoveryView
from oauth_clients.views.introspection import IntrospectionView
from oauth_clients.views.jwks import JwksView
from oauth_clients.views.revocation import RevocationView
from oauth_clients.views.token import TokenView
from oauth_clients.views.userinfo import UserInfoView

__all__ = [
    "DiscoveryView",
    "IntrospectionView",
    "JwksView",
    "RevocationView",
    "TokenView",
    "UserInfoView",
]
