"""Our OAuth2Validator: DOT's validator with the IdP's policy (see ARCHITECTURE.md, OIDC path).

The policy is split by endpoint side into two mixins so neither module grows into a thousand-line
protocol file: `token_policy` (client auth, codes, tokens, refresh, introspection) and
`authorization_policy` (authorize requests, session binding, ID token claims).
"""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator

from oauth_clients.oidc.authorization_policy import AuthorizationPolicyMixin
from oauth_clients.oidc.token_policy import TokenPolicyMixin


class IdPOAuth2Validator(AuthorizationPolicyMixin, TokenPolicyMixin, OAuth2Validator):
    """DOT's validator plus what DOT lacks; each override names the spec clause it serves."""
