"""What the validator learns in one oauthlib callback and uses in a later one, for one request.

oauthlib asks the validator one question per callback (`validate_code`, `save_bearer_token`,
`finalize_id_token`, …) and passes only its `Request` between them. Rather than one ad-hoc
attribute per fact, everything we carry lives in one `GrantState` under one attribute,
created on first use by `grant_state(request)`. A fresh oauthlib request (every HTTP request
builds its own) starts with an empty state, so nothing carries over between requests.

Rows are read once and reused across callbacks, as DOT itself does with
`request.refresh_token_instance`; rows are never built here for a later hook to write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from accounts.sessions import SessionBinding

if TYPE_CHECKING:
    from oauth_clients.access import EffectiveGroups
    from oauth_clients.models import Client, DeviceAuthorization, Grant, RefreshToken

# The one attribute of oauthlib's request we set (oauthlib's `Request` keeps its own parameters
# in `_params`, so this name cannot shadow one of them).
_ATTRIBUTE = "idp"


@dataclass(frozen=True, slots=True)
class CodeRead:
    """An authorization code's Grant row as read by the code's SHA-256 (None: no such code)."""

    code_hash: str
    grant: Grant | None


@dataclass(frozen=True, slots=True)
class RefreshTokenRead:
    """A refresh token's row as read with the calling client, by the token's checksum (None: no
    such token)."""

    checksum: str
    refresh_token: RefreshToken | None


@dataclass(frozen=True, slots=True)
class DeviceRead:
    """A device authorization's row as read by its device code's SHA-256, with its client
    (None: no such code)."""

    code_hash: str
    device: DeviceAuthorization | None


@dataclass(frozen=True, slots=True)
class ApiRead:
    """The API (RFC 9068) registered with a client-credentials request's `resource`, read with
    the client in one round trip to the client cache (None: no such API)."""

    audience: str
    api: Client | None


@dataclass(frozen=True, slots=True)
class IDTokenIssued:
    """An ID token signed in this request (OIDC Core §3.1.3.3) whose row is still to be
    written with the other tokens of the exchange or rotation."""

    jti: str
    expires: datetime


@dataclass(slots=True)
class GrantState:
    """The validator's facts about one oauthlib request; every field is optional."""

    # Authorization side. The browser session the code is issued in (accounts/sessions.py).
    # Written by oauth_clients/oidc/backend.py (`IdPOAuthLibCore`) when it builds the
    # authorization request; read by `save_authorization_code` (copied into the Grant),
    # `validate_silent_login` (`max_age`, second factor) and the ID token's session claims.
    binding: SessionBinding = field(default_factory=SessionBinding)

    # Token side, code exchange. The code's row read by its hash, whichever client it belongs
    # to: written and read by `TokenPolicyMixin._code_grant`, so oauthlib's OpenID dispatcher
    # (`get_authorization_code_scopes`), client authentication (`_client_with_presented_row`)
    # and `validate_code` share one read.
    code_read: CodeRead | None = None
    # The same Grant once `validate_code` accepted it for the authenticated client: written by
    # `validate_code`; read by the PKCE, redirect URI and nonce questions (`_grant`), the new
    # tokens (their sid, auth_time, amr and code checksum), `_save_exchange` and the ID token.
    grant: Grant | None = None

    # Token side, refresh. The presented refresh token read in the same statement as the
    # client: written by `_client_with_presented_row`; read by `validate_refresh_token`, which
    # then hands the row to DOT's `request.refresh_token_instance` as DOT's validator does.
    refresh_token_read: RefreshTokenRead | None = None

    # Token side, device code (RFC 8628). The row the device code names, read with its client:
    # written by `TokenPolicyMixin._device_authorization` (client authentication reads it
    # first); read by `validate_device_code`.
    device_read: DeviceRead | None = None
    # The same row once `validate_device_code` accepted it as approved for the authenticated
    # client: read by the new tokens (auth_time, amr, the code checksum), `_save_device_exchange`
    # and the ID token, as `grant` is for a code exchange.
    device: DeviceAuthorization | None = None

    # Token side, every grant. The RFC 8707 resources of the token request, resolved once
    # against what the authorization allows (`resolve_token_target`, which the token view's
    # lifetime callback calls first), and the API (RFC 9068) they name, if any: read by the
    # access-token generator (`jwt_access.generate_access_token`) and the rows' `resource`.
    resources: list[str] | None = None
    jwt_api: Client | None = None
    # A client-credentials request's API read with its client (`_load_application`), which
    # `resolve_token_target` takes instead of a second read.
    api_read: ApiRead | None = None

    # Token side and bearer checks. The RFC 7638 thumbprint of the key whose DPoP proof this
    # request carried (RFC 9449), verified: written by `TokenPolicyMixin.validate_dpop` (token
    # endpoint) or by the resource that checked the proof (userinfo); read by the new tokens'
    # rows and JWT (`cnf.jkt`), the response's `token_type`, and `validate_bearer_token`, which
    # refuses a bound token without its key's proof.
    dpop_jkt: str | None = None

    # Token side, every grant. The ID token `finalize_id_token` signed: written there; read by
    # `save_bearer_token`, which builds its row and writes it with the other tokens.
    id_token: IDTokenIssued | None = None

    # Both sides. The groups of the person the request is for (`oauth_clients.access.
    # EffectiveGroups`, read on first use): the `groups` claim, and the access check and the
    # roles of a person whose answers did not come with the token or code row, share one read.
    # Written and read by `oauth_clients.oidc.app_access`.
    groups: EffectiveGroups | None = None


def grant_state(request: Any) -> GrantState:
    """This oauthlib request's state, created empty on first use."""
    state = getattr(request, _ATTRIBUTE, None)
    if not isinstance(state, GrantState):
        state = GrantState()
        setattr(request, _ATTRIBUTE, state)
    return state


def authorization_credentials(binding: SessionBinding) -> dict[str, GrantState]:
    """The `credentials` entry that gives the oauthlib request oauthlib builds to issue a code
    (it sets each credential as an attribute) its state, holding this session's binding."""
    return {_ATTRIBUTE: GrantState(binding=binding)}
