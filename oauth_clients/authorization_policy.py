"""Validator policy for the authorization side: authorize requests, sessions, ID token claims.

Mixed into `oauth_clients.validator.IdPOAuth2Validator`.
"""

from __future__ import annotations


class AuthorizationPolicyMixin:
    """Overrides of DOT's OAuth2Validator for /authorize, prompt/max_age and ID token contents."""
