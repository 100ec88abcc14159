"""Validator policy, token side: client authentication, codes, tokens, refresh, introspection.

Mixed into `oauth_clients.validator.IdPOAuth2Validator`.
"""

from __future__ import annotations


class TokenPolicyMixin:
    """Overrides of DOT's OAuth2Validator for the token endpoint and token checks."""
