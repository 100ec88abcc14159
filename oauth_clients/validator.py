"""Our OAuth2Validator: DOT's validator with the IdP's policy (see ARCHITECTURE.md, OIDC path)."""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator


class IdPOAuth2Validator(OAuth2Validator):
    """DOT's validator plus what DOT lacks; each override names the spec clause it serves."""
