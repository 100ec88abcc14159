"""Our OIDC endpoint views, one module per endpoint (DOT's where we keep them, see urls.py)."""

from oauth_clients.views.token import TokenView

__all__ = ["TokenView"]
