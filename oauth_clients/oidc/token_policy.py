"""Validator policy, token side: client authentication, codes, tokens, refresh, introspection.

Mixed into `oauth_clients.oidc.validator.IdPOAuth2Validator`. Every override names its spec
clause and says why it differs from DOT's.
Nothing here stores a clear code or token: codes are kept as SHA-256 (`Grant.code`), tokens as
DOT's checksum with the clear column blanked (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_plus, urlsplit

from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.exceptions import FatalClientError
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
    revoke_access_token,
    set_token_value,
)
from oauth2_provider.oauth2_validators import is_valid_resource_uri
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors, utils
from oauthlib.oauth2.rfc8628 import errors as device_errors

from accounts.audit import build_event, publish_event, record_event
from accounts.models import AuditEvent
from idp.db.prepared import PreparedLookup
from oauth_clients.client_cache import get_client, get_client_and_api
from oauth_clients.models import Client, DeviceAuthorization, Grant, RefreshToken
from oauth_clients.oidc import dpop, store
from oauth_clients.oidc.app_access import (
    annotate_app_access,
    audit_request,
    carry_app_access,
    may_use_app,
)
from oauth_clients.oidc.authorization_policy import build_id_token
from oauth_clients.oidc.claims import (
    annotate_app_has_roles,
    annotate_email_verified,
    carry_app_has_roles,
    carry_email_verified,
)
from oauth_clients.oidc.client_assertion import (
    ASSERTION_TYPE,
    assertion_client_id,
    verify_client_assertion,
)
from oauth_clients.oidc.device import DEVICE_CODE_GRANT, record_poll
from oauth_clients.oidc.grant_state import (
    ApiRead,
    CodeRead,
    DeviceRead,
    RefreshTokenRead,
    grant_state,
)
from oauth_clients.oidc.jwt_access import (
    api_for,
    looks_like_jwt,
    read_access_token,
    revoke_jwt,
    userinfo_audience_ok,
)
from oauth_clients.oidc.tokens import (
    hash_code,
    mark_client_used,
    plausible_client_id,
    refresh_expiries,
    revoke_tokens_issued_from_code,
    token_checksum,
)
from oauth_clients.secrets import check_client_secret
from oauth_clients.uri_rules import USER_SCOPES

# FAPI 2.0 Security Profile §5.3.2.2: a high-security client's codes live at most this long.
HIGH_SECURITY_CODE_SECONDS = 60
# RFC 6749 grant_type value → the Client grant types that allow it. Refresh tokens are only ever
# issued from the code flow and the device flow, so the refresh grant follows those grants.
GRANT_TYPES_ALLOWING = {
    "authorization_code": {Client.GRANT_AUTHORIZATION_CODE, "authorization_code"},
    "refresh_token": {
        Client.GRANT_AUTHORIZATION_CODE,
        "authorization_code",
        "refresh_token",
        Client.GRANT_DEVICE_CODE,
    },
    "client_credentials": {Client.GRANT_CLIENT_CREDENTIALS, "client_credentials"},
    DEVICE_CODE_GRANT: {Client.GRANT_DEVICE_CODE},
}


# The hot lookups, compiled once per process (idp/db/prepared.py says why).
# A token by checksum with its user and client (userinfo, protected resources).
# Each with what the claims and the access check need of the user and the app, in the same
# statement: the address verified, whether the app defines roles, whether the user may use the
# app and the roles granted to them (`annotate_app_access`).
_ACCESS_TOKEN = PreparedLookup(
    lambda checksum: annotate_app_access(
        annotate_app_has_roles(
            annotate_email_verified(
                get_access_token_model()
                .objects.select_related("user", "application")
                .filter(token_checksum=checksum)
            )
        ),
        roles=True,
    )[:1]
)
# A refresh token by checksum, the live row first (rotated rows share the checksum only in
# theory; DOT's constraint is unique (checksum, revoked)). Unlocked: the store's conditional
# write settles a race (oauth_clients/oidc/store.py).
_REFRESH_TOKEN = PreparedLookup(
    lambda checksum: annotate_app_access(
        annotate_app_has_roles(
            annotate_email_verified(
                get_refresh_token_model()
                .objects.filter(token_checksum=checksum)
                .select_related("access_token", "user", "application")
                .order_by(F("revoked").desc(nulls_first=True))
            )
        ),
        roles=True,
    )[:1]
)
# An authorization code by its SHA-256. Unlocked: the store's conditional write settles a race
# (oauth_clients/oidc/store.py).
# With its client: the exchange authenticates that client from this row (one statement, no
# client-cache round trip; `_client_with_presented_row`).
_GRANT = PreparedLookup(
    lambda code_hash: annotate_app_access(
        annotate_app_has_roles(
            annotate_email_verified(
                get_grant_model()
                .objects.select_related("user", "application")
                .filter(code=code_hash)
            )
        ),
        roles=True,
    )[:1]
)

# A device authorization by its device code's SHA-256 (RFC 8628 §3.4), with its client (the
# poll authenticates that client from this row, as a code exchange does) and, once approved,
# what the tokens need of the person: one indexed read per poll (unique index on the hash).
_DEVICE = PreparedLookup(
    lambda code_hash: annotate_app_access(
        annotate_app_has_roles(
            annotate_email_verified(
                DeviceAuthorization.objects.select_related("user", "application").filter(
                    device_code=code_hash
                )
            )
        ),
        roles=True,
    )[:1]
)


def _resolved_resources(request: Request, *, granted: list[str]) -> list[str]:
    """RFC 8707 resource indicators of a token request: each an absolute URI; never beyond
    what the authorization (the code or the refresh token's family) granted (§2.2); what it
    granted when the request names none. (The token endpoint refuses a repeated parameter
    before this: one resource at most.)"""
    resource = getattr(request, "resource", None)
    requested = [resource] if isinstance(resource, str) and resource.strip() else []
    for value in [*requested, *granted]:
        if not is_valid_resource_uri(value):
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description=f"The resource '{value}' is not a valid resource indicator.",
                request=request,
            )
    beyond = [value for value in requested if granted and value not in granted]
    if beyond:
        raise errors.CustomOAuth2Error(
            error="invalid_target",
            description=(
                f"The requested resource '{beyond[0]}' is not allowed. Token request cannot "
                "escalate resource permissions beyond the original authorization grant"
            ),
            request=request,
        )
    return requested or list(granted)


def resolve_token_target(request: Request) -> Client | None:
    """The request's resources resolved once (set on `request.resource`, a list, for the
    rows) and the API (RFC 9068) they name, or None for an opaque token.

    Called first by the token view's lifetime callback (an API's tokens have its lifetime),
    before oauthlib generates the access token (`jwt_access.generate_access_token`), so the
    ID token's `at_hash` is over the token the client receives."""
    state = grant_state(request)
    if state.resources is None:
        granted: list[str] = []
        if request.grant_type == "authorization_code" and state.grant is not None:
            granted = state.grant.resource or []
        elif request.grant_type == "refresh_token":
            previous = getattr(request, "refresh_token_instance", None)
            granted = (previous.resource or []) if previous is not None else []
        state.resources = _resolved_resources(request, granted=granted)
        state.jwt_api = api_for(state.resources, read=state.api_read)
    request.resource = state.resources
    return state.jwt_api


if TYPE_CHECKING:
    # For the type checker the mixin is what it extends at runtime (see validator.py).
    from oauth2_provider.oauth2_validators import OAuth2Validator as _ValidatorBase
else:
    _ValidatorBase = object


class TokenPolicyMixin(_ValidatorBase):
    """Overrides of DOT's OAuth2Validator for the token endpoint and token checks."""

    # ------------------------------------------------------------------ client authentication
    def _load_application(self, client_id: Any, request: Request) -> Client | None:
        # Private, yet the one place DOT's public methods load a client from (client_id
        # validation, client_authentication_required, ...): no public hook covers them all.
        # tests/oidc/test_grant_state.py fails if DOT renames it or changes its signature.
        # DOT catches psycopg2's ValueError for a NUL byte in client_id; psycopg 3 raises
        # DataError (a 500). No client id contains NUL or is absurdly long: unknown client.
        if not plausible_client_id(client_id):
            return None
        # DOT's lookup, through the client cache (invalidated by the client services); no
        # Client ID Metadata Documents here (DOT's CIMD is off).
        current = request.client
        if isinstance(current, Client) and current.client_id == client_id:
            return current if current.is_usable(request) else None
        client = self._client_with_presented_row(client_id, request)
        if client is ...:
            client = self._cached_client(client_id, request)
        if client is None or not client.is_usable(request):
            request.client = None
            return None
        request.client = client
        return client

    @staticmethod
    def _cached_client(client_id: str, request: Request) -> Client | None:
        """The client from the client cache; for a client-credentials request naming one
        `resource`, the API (RFC 9068) of that audience comes in the same round trip, kept for
        `resolve_token_target` (`GrantState.api_read`)."""
        resource = getattr(request, "resource", None)
        if (
            request.grant_type != "client_credentials"
            or not isinstance(resource, str)
            or not is_valid_resource_uri(resource)  # refused later, never looked up
        ):
            return get_client(client_id)
        client, api = get_client_and_api(client_id, resource)
        grant_state(request).api_read = ApiRead(audience=resource, api=api)
        return client

    def _client_with_presented_row(self, client_id: str, request: Request) -> Any:
        """The client read from the database with the row it presents, instead of from the
        client cache (a round trip of its own); `...` when there is no such row.

        - a refresh grant: the refresh token's row comes with its client (the token's read
          moves here from `validate_refresh_token`);
        - a code exchange: the code's row, which oauthlib's OpenID dispatcher read before
          authentication (`_code_grant`), came with its client.
        Either is that client when the ids match; a row of another client (refused later) or no
        row leaves the client to the cache."""
        presented = request.refresh_token if request.grant_type == "refresh_token" else None
        if isinstance(presented, str) and "\x00" not in presented:
            checksum = token_checksum(presented)
            token_row = cast(
                "RefreshToken | None", _REFRESH_TOKEN.first(checksum, get_refresh_token_model())
            )
            grant_state(request).refresh_token_read = RefreshTokenRead(checksum, token_row)
            if token_row is not None and token_row.application.client_id == client_id:
                return token_row.application
            return ...
        code = request.code if request.grant_type == "authorization_code" else None
        if isinstance(code, str) and "\x00" not in code:
            grant = self._code_grant(code, request)
            if grant is not None and grant.application.client_id == client_id:
                return grant.application
        if request.grant_type == DEVICE_CODE_GRANT:
            row = self._device_authorization(getattr(request, "device_code", None), request)
            if row is not None and row.application.client_id == client_id:
                return row.application
        return ...

    @staticmethod
    def _client_secret_matches(client: Client, provided: str) -> bool:
        """The current secret, or the previous one during its grace period after a rotation.
        A keyed HMAC compared in constant time (oauth_clients/secrets.py); never Django's
        password hasher (PBKDF2 cost ~0.4 s of CPU per token request)."""
        if check_client_secret(provided, client.client_secret):
            return True
        grace_until = client.previous_secret_expires_at
        return bool(
            client.previous_client_secret
            and grace_until is not None
            and grace_until > timezone.now()
            and check_client_secret(provided, client.previous_client_secret)
        )

    @staticmethod
    def _basic_auth_string(request: Request) -> str | None:
        """The credentials of an `Authorization: Basic …` header (DOT copies `META` into the
        oauthlib request's headers), or None."""
        scheme, _, credentials = (
            (request.headers or {}).get("HTTP_AUTHORIZATION", "").partition(" ")
        )
        return credentials if scheme == "Basic" and credentials else None

    def _basic_credentials(self, request: Request) -> tuple[str, str] | None:
        """RFC 6749 §2.3.1: id and secret, form-urlencoded, then Base64 in HTTP Basic."""
        auth_string = self._basic_auth_string(request)
        if not auth_string:
            return None
        try:
            decoded = base64.b64decode(auth_string, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
        if ":" not in decoded:
            return None
        client_id, secret = decoded.split(":", 1)
        return unquote_plus(client_id), unquote_plus(secret)

    def authenticate_client(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        """RFC 6749 §2.3.1: client_secret_basic or client_secret_post, one method per request.

        A disabled client is not found (`Client.is_usable`), so it gets `invalid_client`. A public
        client presenting only its id (empty secret) is identified, as with `none`.
        """
        if self._assertion_presented(request):
            return self._authenticate_with_assertion(request)
        basic = self._basic_credentials(request)
        body_secret = getattr(request, "client_secret", None)
        if basic is not None:
            client_id, secret = basic
            # RFC 6749 §2.3: "MUST NOT use more than one authentication method in each request";
            # a body client_id naming another client is a confused request too.
            if body_secret or (request.client_id and request.client_id != client_id):
                return False
        elif self._basic_auth_string(request):
            return False  # a Basic header we cannot decode
        else:
            client_id, secret = request.client_id, body_secret or ""
        if not client_id:
            return False
        client = self._load_application(client_id, request)
        if client is None or client.uses_private_key_jwt or client.high_security:
            # A private_key_jwt client has no shared secret (RFC 7523 §2.2); a high-security
            # client authenticates with its keys only (FAPI 2.0 Security Profile §5.3.2.1).
            return False
        if client.client_type == Client.CLIENT_PUBLIC:
            authenticated = not secret
        else:
            authenticated = self._client_secret_matches(client, secret)
        if not authenticated:
            return False
        request.client_id = client.client_id
        mark_client_used(client)
        return True

    @staticmethod
    def _assertion_presented(request: Request) -> bool:
        return bool(
            getattr(request, "client_assertion", None)
            or getattr(request, "client_assertion_type", None)
        )

    def _authenticate_with_assertion(self, request: Request) -> bool:
        """RFC 7523 §2.2 / OIDC Core §9 `private_key_jwt`: the client named by the assertion,
        registered with keys, and the assertion verified against them
        (`oauth_clients.oidc.client_assertion`). Never combined with another method (RFC 6749
        §2.3); a `client_id` parameter, if sent, must name the same client (RFC 7523 §3.1)."""
        assertion = getattr(request, "client_assertion", None)
        if (
            getattr(request, "client_assertion_type", None) != ASSERTION_TYPE
            or not isinstance(assertion, str)
            or getattr(request, "client_secret", None)
            or self._basic_auth_string(request)
        ):
            return False
        client_id = assertion_client_id(assertion)
        if client_id is None or (request.client_id and request.client_id != client_id):
            return False
        client = self._load_application(client_id, request)
        if client is None or not client.uses_private_key_jwt:
            return False
        if not verify_client_assertion(
            client=client, assertion=assertion, request=audit_request(request)
        ):
            return False
        request.client_id = client.client_id
        mark_client_used(client)
        return True

    def client_authentication_required(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        """DOT's answer, and always when the request carries a client assertion (DOT looks only
        for a secret or a confidential client named by `client_id`, which RFC 7523 makes
        optional)."""
        if self._assertion_presented(request):
            return True
        return bool(super().client_authentication_required(request, *args, **kwargs))

    def authenticate_client_id(
        self, client_id: str, request: Request, *args: Any, **kw: Any
    ) -> bool:
        """A public client identified by its id alone (RFC 6749 §3.2.1, PKCE protects the code)."""
        if not client_id or self._load_application(client_id, request) is None:
            return False
        if request.client.client_type == Client.CLIENT_CONFIDENTIAL or request.client.high_security:
            return False
        mark_client_used(request.client)
        return True

    def validate_user(self, *args: Any, **kwargs: Any) -> bool:
        """RFC 9700 §2.4: the password grant is never served, so no password is ever checked
        here (the token view refuses the grant before oauthlib; this is the second lock)."""
        return False

    # ------------------------------------------------------------------ grant types and scopes
    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Client, request: Request, *a: Any, **kw: Any
    ) -> bool:
        """Several grant types per client (`Client.allowed_grant_types`); never password or
        implicit (RFC 9700 §2.4, §2.1.2). The device code grant (RFC 8628) only for the apps
        registered for it (kind `device`)."""
        allowing = GRANT_TYPES_ALLOWING.get(grant_type)
        if not allowing:
            return False
        client = request.client
        if grant_type == "client_credentials" and client.client_type != Client.CLIENT_CONFIDENTIAL:
            return False  # RFC 6749 §4.4: confidential clients only
        return bool(client.allowed_grant_types() & allowing)

    def validate_scopes(
        self,
        client_id: str,
        scopes: list[str],
        client: Client,
        request: Request,
        *a: Any,
        **kw: Any,
    ) -> bool:
        """A machine (client credentials) acts for no person: no user scopes, and only scopes
        the client is allowed. Other grants fall through to the next policy / DOT."""
        if getattr(request, "grant_type", None) == "client_credentials":
            requested = set(scopes)
            allowed = set((client.allowed_scopes or "").split()) - USER_SCOPES
            return requested <= allowed and super().validate_scopes(
                client_id, scopes, client, request, *a, **kw
            )
        return super().validate_scopes(client_id, scopes, client, request, *a, **kw)

    def get_default_scopes(self, client_id: str, request: Request, *a: Any, **kw: Any) -> list:
        if getattr(request, "grant_type", None) == "client_credentials":
            return []  # DEFAULT_SCOPES is ["openid"], which a machine must not get
        return super().get_default_scopes(client_id, request, *a, **kw)

    def is_pkce_required(self, client_id: str, request: Request) -> bool:
        """RFC 9700 §2.1.1: PKCE for every client unless an admin exempted a legacy
        confidential client (`Client.require_pkce`)."""
        client = request.client if isinstance(request.client, Client) else None
        if client is None or client.client_id != client_id:
            client = get_client(client_id) if client_id else None
        if client is None:
            return True
        public = client.client_type == Client.CLIENT_PUBLIC
        return client.require_pkce or client.high_security or public

    # ------------------------------------------------------------------ DPoP (RFC 9449)
    def validate_dpop(self, request: Request) -> None:
        """RFC 9449 §5: the token request's DPoP proof, if any, checked (§4.3) and its key's
        thumbprint kept for the new tokens; none from a client that must send one
        (`Client.require_dpop`); a public client's bound refresh token only with its key's
        proof. Run by every token grant after its own checks (oauthlib's `post_token`
        validators, registered by `oauth_clients.oidc.device_grant.Server`), so the client is
        authenticated and the code or refresh token read."""
        client = request.client
        proof = (request.headers or {}).get("HTTP_DPOP")
        if proof is None:
            if client.must_use_dpop:
                raise errors.CustomOAuth2Error(
                    error="invalid_dpop_proof",
                    description="This client must send a DPoP proof.",
                    request=request,
                )
        else:
            try:
                jkt = dpop.verify_proof(
                    proof=proof,
                    method=request.http_method,
                    uri=dpop.endpoint_uri(urlsplit(request.uri).path),
                    # RFC 9449 §8: a client that must use DPoP must use the server's nonce.
                    require_nonce=client.must_use_dpop,
                    algorithms=dpop.strict_algorithms(client),
                )
            except dpop.NonceRequired as missing:
                raise dpop.UseDPoPNonceError(description=str(missing), request=request) from None
            except dpop.InvalidProof as refused:
                if refused.replayed:
                    dpop.record_refusal(
                        request=audit_request(request), client=client, reason=str(refused)
                    )
                raise errors.CustomOAuth2Error(
                    error="invalid_dpop_proof", description=str(refused), request=request
                ) from None
            grant_state(request).dpop_jkt = jkt
        # RFC 9449 §10 and §5: a code bound to a DPoP key (`dpop_jkt`, or the pushed request's
        # proof, §10.1) and a public client's bound refresh token are redeemed only with a
        # proof of that key.
        grant = grant_state(request).grant
        previous = getattr(request, "refresh_token_instance", None)
        if request.grant_type == "authorization_code" and grant is not None:
            self._require_bound_key(
                request, client, bound=grant.dpop_jkt, subject=grant.user, what="authorization code"
            )
        if request.grant_type == "refresh_token" and previous is not None:
            self._require_bound_key(
                request,
                client,
                bound=previous.dpop_jkt,
                subject=previous.user,
                what="refresh token",
            )

    def _require_bound_key(
        self, request: Request, client: Any, *, bound: str, subject: Any, what: str
    ) -> None:
        """`invalid_grant` (audited) when the credential is bound to a DPoP key other than the
        one this request's proof showed (or no proof)."""
        if not bound or bound == grant_state(request).dpop_jkt:
            return
        dpop.record_refusal(
            request=audit_request(request),
            client=client,
            subject=subject,
            reason=f"DPoP-bound {what} without its key's proof",
        )
        raise errors.InvalidGrantError(
            description=f"This {what} is bound to a DPoP key: send its proof.", request=request
        )

    # ------------------------------------------------------------------ authorization codes
    def save_authorization_code(
        self, client_id: str, code: dict, request: Request, *args: Any, **kwargs: Any
    ) -> None:
        """Store the code as SHA-256 only, with the browser session it was issued in.

        Contract with the authorization side (oauth_clients/oidc/backend.py): before oauthlib
        saves the code, `grant_state(request).binding` holds this browser session's sid,
        auth_time, amr and acr (`accounts.sessions.SessionBinding`; empty when absent). They
        are copied into the Grant, and from there to the tokens issued for it.
        """
        if request.code_challenge_method == "plain":
            # RFC 9700 §2.1.1 / RFC 7636 §4.2: S256 only.
            raise errors.InvalidRequestError(
                description='Unsupported "plain" code_challenge_method; use "S256".',
                request=request,
            )
        binding = grant_state(request).binding
        auth_time = binding.auth_time
        lifetime = oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS
        if request.client.high_security:
            # FAPI 2.0 Security Profile §5.3.2.2: codes live at most 60 seconds.
            lifetime = min(lifetime, HIGH_SECURITY_CODE_SECONDS)
        grant_model = get_grant_model()
        grant_model(
            application=request.client,
            user=request.user,
            code=hash_code(code["code"]),
            expires=timezone.now() + timedelta(seconds=lifetime),
            redirect_uri=request.redirect_uri,
            scope=" ".join(request.scopes),
            code_challenge=request.code_challenge or "",
            code_challenge_method=request.code_challenge_method or "",
            nonce=request.nonce or "",
            claims=json.dumps(request.claims or {}),
            resource=getattr(request, "resource", None) or [],
            sid=binding.sid,
            auth_time=(
                datetime.fromtimestamp(int(auth_time), tz=UTC) if auth_time is not None else None
            ),
            amr=list(binding.amr),
            acr=binding.acr,
            # RFC 9449 §10 (checked well-formed by backend.py).
            dpop_jkt=getattr(request, "dpop_jkt", None) or "",
        ).save(force_insert=True)

    def _grant(self, code: str, request: Request) -> Any:
        """The Grant for `code` of the requesting client, kept in the request's state by
        `validate_code` (one lookup per exchange instead of DOT's one per question)."""
        hashed = hash_code(code)
        grant = grant_state(request).grant
        if grant is not None and grant.code == hashed:
            return grant
        return get_grant_model().objects.filter(code=hashed, application=request.client).first()

    def _code_grant(self, code: str, request: Request) -> Any:
        """The Grant row of `code` (any client), read once per request (the OpenID dispatcher
        asks for its scopes first). Not locked: the exchange's conditional write settles a race
        (oauth_clients/oidc/store.py)."""
        hashed = hash_code(code)
        state = grant_state(request)
        if state.code_read is not None and state.code_read.code_hash == hashed:
            return state.code_read.grant
        grant = cast("Grant | None", _GRANT.first(hashed, get_grant_model()))
        carry_email_verified(grant)
        carry_app_has_roles(grant)
        carry_app_access(grant)
        state.code_read = CodeRead(hashed, grant)
        return grant

    # ------------------------------------------------------------------ device codes (RFC 8628)
    def _device_authorization(self, device_code: Any, request: Request) -> Any:
        """The device authorization a device code names (any client), read once per request
        with its client and person. Unlocked: the exchange's conditional write settles a race."""
        if not isinstance(device_code, str) or "\x00" in device_code or len(device_code) > 512:
            return None
        hashed = hash_code(device_code)
        state = grant_state(request)
        if state.device_read is not None and state.device_read.code_hash == hashed:
            return state.device_read.device
        row = cast("DeviceAuthorization | None", _DEVICE.first(hashed, DeviceAuthorization))
        carry_email_verified(row)
        carry_app_has_roles(row)
        carry_app_access(row)
        state.device_read = DeviceRead(hashed, row)
        return row

    def validate_device_code(self, device_code: str, client: Client, request: Request) -> None:
        """RFC 8628 §3.4-3.5: the device code is its client's, used once, and approved; else the
        error the device acts on (`authorization_pending`, `slow_down`, `expired_token`,
        `access_denied`, or `invalid_grant` for a code it has no business presenting).

        Asked by `oauth_clients.oidc.device_grant.DeviceCodeGrant` (oauthlib has no such
        question). On success the person and the approved scopes are on the request and the row
        in its `grant_state`, for the tokens and `_save_device_exchange`."""
        row = self._device_authorization(device_code, request)
        if row is None or row.application_id != client.pk:
            # RFC 6749 §5.2: not issued to this client (or never issued).
            raise errors.InvalidGrantError(request=request)
        if row.consumed_at is not None:
            # Used once already: what it issued is revoked, as for a replayed code.
            revoke_tokens_issued_from_code(
                code_checksum=row.device_code,
                client=client,
                request=audit_request(request),
                reason="device code replayed",
            )
            raise errors.InvalidGrantError(request=request)
        now = timezone.now()
        if row.is_expired(now):
            raise device_errors.ExpiredTokenError(request=request)
        if row.status == DeviceAuthorization.Status.DENIED:
            raise device_errors.AccessDenied(request=request)
        if row.status == DeviceAuthorization.Status.PENDING:
            if record_poll(device=row, now=now).slow_down:
                raise device_errors.SlowDownError(request=request)
            raise device_errors.AuthorizationPendingError(request=request)
        user = row.user
        if user is None or not user.is_active:
            raise errors.InvalidGrantError(request=request)
        if not may_use_app(request=request, user=user, client=client):
            raise errors.InvalidGrantError(request=request)  # unassigned since approving
        grant_state(request).device = row
        request.user = user
        request.scopes = utils.scope_to_list(row.scope) if row.scope else []

    def validate_code(
        self, client_id: str, code: str, client: Client, request: Request, *a: Any, **kw: Any
    ) -> bool:
        """RFC 6749 §4.1.2: a code is bound to its client, lives ≤ 60 s and is used once.

        Two concurrent exchanges may both pass here: the store's conditional write lets one
        consume the code and the other is answered as a replay (`_save_exchange`). A code
        presented again after its exchange revokes every token issued from it (RFC 6749 §4.1.2,
        RFC 9700 §4.2.4).
        """
        grant = self._code_grant(code, request)
        if grant is None or grant.application_id != client.pk:
            return False
        if grant.consumed_at is not None:
            revoke_tokens_issued_from_code(
                code_checksum=grant.code,
                client=client,
                request=audit_request(request),
                reason="authorization code replayed",
            )
            return False
        if grant.is_expired() or not grant.user.is_active:
            return False
        if not may_use_app(request=request, user=grant.user, client=client):
            return False  # unassigned since the code was issued: invalid_grant, no tokens
        grant_state(request).grant = grant
        request.scopes = utils.scope_to_list(grant.scope)
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            request.claims = json.loads(grant.claims)
        return True

    def get_code_challenge(self, code: str, request: Request) -> str | None:
        grant = self._grant(code, request)
        return (grant.code_challenge or None) if grant else None

    def get_code_challenge_method(self, code: str, request: Request) -> str | None:
        # RFC 9700 §2.1.1: only S256. A legacy "plain" grant answers "no method", which oauthlib
        # refuses with invalid_grant instead of comparing the verifier in clear.
        grant = self._grant(code, request)
        method = grant.code_challenge_method if grant else ""
        return method if method == "S256" else None

    def confirm_redirect_uri(
        self,
        client_id: str,
        code: str,
        redirect_uri: str,
        client: Client,
        request: Request,
        *a: Any,
        **kw: Any,
    ) -> bool:
        """RFC 6749 §4.1.3: identical to the redirect_uri of the authorization request."""
        grant = self._grant(code, request)
        return grant is not None and grant.redirect_uri_allowed(redirect_uri)

    def get_authorization_code_scopes(
        self, client_id: str, code: str, redirect_uri: str, request: Request
    ) -> list[str]:
        # Asked by oauthlib's OpenID dispatcher before the request is validated: the row read
        # here is the one `validate_code` checks, so an exchange reads it once.
        if not code:
            return []
        grant = self._code_grant(code, request)
        return utils.scope_to_list(grant.scope) if grant is not None and grant.scope else []

    def get_authorization_code_nonce(
        self, client_id: str, code: str, redirect_uri: str, request: Request
    ) -> str | None:
        grant = self._grant(code, request)
        return (grant.nonce or None) if grant else None

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Request, *a: Any, **kw: Any
    ) -> None:
        """Nothing left to do: `save_bearer_token` consumed the code in the same write as the
        tokens it issued (`_save_exchange`), so oauthlib's order of the two calls is no
        contract of ours. The code is kept (consumed), so a replay can be traced to them."""

    # ------------------------------------------------------------------ issuing tokens
    def _build_access_token(
        self,
        expires: Any,
        request: Request,
        token: dict,
        id_token: Any,
        source_refresh_token: Any = None,
    ) -> Any:
        state = grant_state(request)
        grant, device = state.grant, state.device
        previous = source_refresh_token
        if grant is not None:
            sid, code_checksum = grant.sid, grant.code
        elif device is not None:
            sid, code_checksum = device.sid, device.device_code
        elif previous is not None:
            # The code the family descends from, through the access token the refresh token
            # was issued with (read with it: `_REFRESH_TOKEN`; `validate_refresh_token`
            # refuses a refresh token without one).
            sid, code_checksum = previous.sid, previous.access_token.code_checksum
        else:
            sid, code_checksum = "", ""
        access_token = get_access_token_model()(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            sid=sid,
            code_checksum=code_checksum,
            dpop_jkt=state.dpop_jkt or "",
        )
        set_token_value(access_token, token["access_token"])
        return access_token

    def _build_refresh_token(
        self, request: Request, refresh_token_code: str, access_token: Any, previous: Any
    ) -> Any:
        state = grant_state(request)
        grant: Any = state.grant or state.device
        if previous is not None:
            family = previous.token_family
            sid, auth_time, amr = previous.sid, previous.auth_time, previous.amr
            family_expires = previous.family_expires
            dpop_jkt = previous.dpop_jkt
        else:
            family = uuid.uuid4()
            sid = grant.sid if grant else ""
            auth_time = grant.auth_time if grant else None
            amr = grant.amr if grant else []
            family_expires = None
            # RFC 9449 §5: a public client's refresh token is bound to the key of the request
            # that obtained it; a confidential client's is not (its authentication already
            # constrains it to the client, and it may change its DPoP key).
            dpop_jkt = (
                state.dpop_jkt or "" if request.client.client_type == Client.CLIENT_PUBLIC else ""
            )
        expires, family_expires = refresh_expiries(
            client=request.client, family_expires=family_expires
        )
        refresh_token = get_refresh_token_model()(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=family,
            resource=getattr(request, "resource", []),
            sid=sid,
            auth_time=auth_time,
            amr=amr,
            expires=expires,
            family_expires=family_expires,
            dpop_jkt=dpop_jkt,
        )
        set_token_value(refresh_token, refresh_token_code)
        return refresh_token

    def save_bearer_token(self, token: dict, request: Request, *args: Any, **kwargs: Any) -> Any:
        """One path per grant: the code exchange and the refresh rotation are written by the
        token store (oauth_clients/oidc/store.py), conditionally and atomically on every database;
        the client-credentials token is one INSERT, atomic on its own (no transaction)."""
        if "scope" not in token:  # oauthlib always sets it; DOT refuses the same way
            raise FatalClientError("Failed to issue the token: missing scope")
        if grant_state(request).dpop_jkt is not None:
            # RFC 9449 §5: a bound access token is of type DPoP (this dict is the response).
            token["token_type"] = dpop.TOKEN_TYPE
        if request.grant_type == "authorization_code":
            return self._save_exchange(token, request)
        if request.grant_type == "refresh_token":
            return self._save_rotation(token, request)
        if request.grant_type == DEVICE_CODE_GRANT:
            return self._save_device_exchange(token, request)
        return self._save_machine_token(token, request)

    def _save_machine_token(self, token: dict, request: Request) -> None:
        """RFC 6749 §4.4.3: the client-credentials token, for no person."""
        request.user = None
        if resolve_token_target(request) is not None:
            # RFC 9068: a JWT for an API is self-contained; nothing is written (no row to
            # introspect: `jwt_access.introspect_jwt` reads the token itself).
            return
        access_token = self._new_rows(token, request)[1]
        access_token.save(force_insert=True)

    def _new_rows(
        self, token: dict, request: Request, previous: Any = None
    ) -> tuple[Any, Any, Any, Any]:
        """The grant's unsaved rows: now, the access token, its ID token (the one
        `finalize_id_token` signed; None without `openid`) and the refresh token (None when
        oauthlib issues none). Their resources: `resolve_token_target` (RFC 8707)."""
        resolve_token_target(request)
        now = timezone.now()
        expires = now + timedelta(
            seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        )
        issued = grant_state(request).id_token
        id_token = build_id_token(request, issued) if issued is not None else None
        access_token = self._build_access_token(expires, request, token, id_token, previous)
        refresh_token = (
            self._build_refresh_token(request, token["refresh_token"], access_token, previous)
            if token.get("refresh_token")
            else None
        )
        return now, access_token, id_token, refresh_token

    def _save_exchange(self, token: dict, request: Request) -> None:
        """RFC 6749 §4.1.3: the code consumed and the tokens it issues written, or nothing.

        A concurrent exchange of the same code that consumed it first leaves this one with
        nothing written: a replay (RFC 6749 §4.1.2), answered as `validate_code` answers one
        that arrives later, by revoking what the code issued."""
        grant = grant_state(request).grant
        if grant is None:
            # oauthlib saves a code exchange's tokens only after `validate_code` accepted it.
            raise errors.InvalidGrantError(request=request)
        self._save_single_use(
            token,
            request,
            grant_type="authorization_code",
            code_checksum=grant.code,
            write=lambda **rows: store.implementation().exchange_code(grant=grant, **rows),
        )

    def _save_device_exchange(self, token: dict, request: Request) -> None:
        """RFC 8628 §3.5: the approved device code consumed and the tokens it issues written, or
        nothing (a concurrent poll consumed it first: answered as a replay)."""
        device = grant_state(request).device
        if device is None:
            # oauthlib saves a device exchange's tokens only after `validate_device_code`.
            raise errors.InvalidGrantError(request=request)
        self._save_single_use(
            token,
            request,
            grant_type="device_code",
            code_checksum=device.device_code,
            write=lambda **rows: store.implementation().exchange_device_code(device=device, **rows),
        )

    def _save_single_use(
        self,
        token: dict,
        request: Request,
        *,
        grant_type: str,
        code_checksum: str,
        write: Callable[..., bool],
    ) -> None:
        """A single-use code (authorization or device code) exchanged: the new rows and the
        audit row handed to the store's `write`, which consumes the code and writes them, or
        nothing when another request consumed it first (a replay: what it issued is revoked)."""
        now, access_token, id_token, refresh_token = self._new_rows(token, request)
        audit_http_request = audit_request(request)
        event = build_event(
            type=AuditEvent.Type.TOKENS_ISSUED,
            request=audit_http_request,
            subject=request.user,
            client=request.client,
            grant=grant_type,
            scope=" ".join(request.scopes or []),
        )
        if not write(
            now=now,
            access_token=access_token,
            refresh_token=refresh_token,
            id_token=id_token,
            audit_event=event,
        ):
            revoke_tokens_issued_from_code(
                code_checksum=code_checksum,
                client=request.client,
                request=audit_http_request,
                reason=f"{grant_type.replace('_', ' ')} replayed",
            )
            raise errors.InvalidGrantError(request=request)
        publish_event(event)

    def _save_rotation(self, token: dict, request: Request) -> None:
        """RFC 9700 §4.14.2: the refresh token retired with its access token and the new pair
        written, or nothing (another request rotated it first: this one is a replay)."""
        previous = getattr(request, "refresh_token_instance", None)
        if previous is None:
            # oauthlib saves a refresh's tokens only after `validate_refresh_token` accepted it.
            raise errors.InvalidGrantError(request=request)
        now, access_token, id_token, refresh_token = self._new_rows(token, request, previous)
        if not store.implementation().rotate_refresh(
            previous=previous,
            now=now,
            access_token=access_token,
            refresh_token=refresh_token,
            id_token=id_token,
        ):
            raise errors.InvalidGrantError(request=request)
        request.refresh_token_instance = None

    # ------------------------------------------------------------------ refresh
    def validate_refresh_token(
        self, refresh_token: str, client: Client, request: Request, *a: Any, **kw: Any
    ) -> bool:
        """RFC 6749 §6, RFC 9700 §4.14.2: bound to its client, rotated on use, idle and absolute
        expiry; a rotated (already used) token presented again revokes its whole family."""
        refresh_token_model = get_refresh_token_model()
        checksum = token_checksum(refresh_token)
        read_with_client = grant_state(request).refresh_token_read
        if read_with_client is not None and read_with_client.checksum == checksum:
            rt = read_with_client.refresh_token  # read with the client
        else:
            rt = cast("RefreshToken | None", _REFRESH_TOKEN.first(checksum, refresh_token_model))
        carry_email_verified(rt)
        carry_app_has_roles(rt)
        carry_app_access(rt)
        if rt is None or rt.application_id != client.pk:
            return False
        if rt.revoked is not None:
            # Reuse of a rotated or revoked token: the family is compromised (RFC 9700 §4.14.2).
            superseded = get_access_token_model().objects.filter(source_refresh_token=rt).exists()
            refresh_token_model.revoke_family(rt.token_family)
            if superseded:
                record_event(
                    type=AuditEvent.Type.TOKEN_REPLAY,
                    request=audit_request(request),
                    subject=rt.user,
                    client=client,
                    grant="refresh_token",
                    reason="rotated refresh token replayed",
                )
            return False
        now = timezone.now()
        if rt.access_token is None:
            return False  # orphan: its access token was deleted out of band (revoked)
        if (rt.expires is not None and rt.expires <= now) or (
            rt.family_expires is not None and rt.family_expires <= now
        ):
            return False
        if not rt.user.is_active:
            return False  # a deactivated user's tokens are dead even if rows remain
        if not may_use_app(request=request, user=rt.user, client=rt.application):
            return False  # no longer assigned to the app: invalid_grant (oauth_clients.access)
        request.user = rt.user
        request.refresh_token = refresh_token
        request.refresh_token_instance = rt
        return True

    # ------------------------------------------------------------------ using tokens
    def _load_access_token(self, token: str) -> Any:
        """DOT's lookup by checksum, with the token's user and client in the same row.

        Private, yet DOT's `validate_bearer_token` reads the token only through it: the public
        alternative is a copy of that method's checks (audience, usable client, introspection).
        tests/oidc/test_grant_state.py fails if DOT renames it or changes its signature.

        One prepared query (idp/db/prepared.py): once compiling the joins cost nothing,
        reading the client with the token was cheaper than fetching it from the client cache
        (a Redis round trip, docs/performance.md), and always as fresh as the database. A token
        without a client is no token (DOT would let `application=None` pass)."""
        access_token: Any = _ACCESS_TOKEN.first(token_checksum(token), get_access_token_model())
        if access_token is None or access_token.application is None:
            return None
        carry_email_verified(access_token)
        carry_app_has_roles(access_token)
        carry_app_access(access_token)
        return access_token

    def validate_bearer_token(self, token: str, scopes: list[str], request: Request) -> bool:
        """DOT's check plus: a deactivated user's tokens, and those of a person who may no
        longer use the app (`oauth_clients.access.may_use`), are invalid at once (DOT checks the
        client via `is_usable`), and a token without a person never passes where `openid` is
        required (a client-credentials token at userinfo). An RFC 9068 token is for its API:
        refused unless its audience includes this provider (`jwt_access.userinfo_audience_ok`;
        the API tokens issued here never do). A DPoP-bound token (RFC 9449) passes only when
        the resource verified a proof of its key first (`grant_state(request).dpop_jkt`)."""
        if looks_like_jwt(token):
            claims = read_access_token(token)
            if claims is None or not userinfo_audience_ok(claims):
                request.oauth2_error = OrderedDict(
                    [
                        ("error", "invalid_token"),
                        (
                            "error_description",
                            _("This access token is for an API, not for this provider."),
                        ),
                    ]
                )
                return False
        if not super().validate_bearer_token(token, scopes, request):
            return False
        access_token = request.access_token
        if access_token.dpop_jkt and access_token.dpop_jkt != grant_state(request).dpop_jkt:
            # RFC 9449 §7.1: a DPoP-bound token only with a proof of its key, which the
            # resource checked first (userinfo); everywhere else it is refused.
            dpop.record_refusal(
                request=audit_request(request),
                client=access_token.application,
                subject=access_token.user,
                reason="DPoP-bound access token without its key's proof",
            )
            request.oauth2_error = OrderedDict(
                [
                    ("error", "invalid_token"),
                    ("error_description", _("This access token is bound to a DPoP key.")),
                ]
            )
            return False
        if not access_token.dpop_jkt and access_token.application.high_security:
            # FAPI 2.0 Security Profile §5.3.2.1: a high-security app's tokens are
            # sender-constrained; an unbound one (issued before the switch) is not accepted.
            request.oauth2_error = OrderedDict(
                [
                    ("error", "invalid_token"),
                    ("error_description", _("This app's access tokens must be DPoP-bound.")),
                ]
            )
            return False
        person = access_token.user
        if person is not None and (
            not person.is_active
            or not may_use_app(request=request, user=person, client=access_token.application)
        ):
            request.oauth2_error = OrderedDict(
                [
                    ("error", "invalid_token"),
                    ("error_description", _("The access token is invalid.")),
                ]
            )
            return False
        if access_token.user is None and "openid" in (scopes or []):
            request.oauth2_error = OrderedDict(
                [
                    ("error", "insufficient_scope"),
                    ("error_description", _("This token was not issued for a person.")),
                ]
            )
            return False
        return True

    def revoke_token(
        self, token: str, token_type_hint: str | None, request: Request, *a: Any, **kw: Any
    ) -> None:
        """RFC 7009 §2.1: only the calling client's own tokens; a refresh token takes every
        token of its grant (its family and their access tokens) with it."""
        client = request.client
        if getattr(client, "pk", None) is None:
            return
        # RFC 9068: a JWT of this client is denied by its jti until it expires (a
        # client-credentials one has no row; a user-backed one's row goes below too).
        revoked_jwt = revoke_jwt(token=token, client=client) if looks_like_jwt(token) else None
        lookup = {"token_checksum": token_checksum(token), "application_id": client.pk}
        access_token_model = get_access_token_model()
        refresh_token_model = get_refresh_token_model()
        order = [access_token_model, refresh_token_model]
        if token_type_hint == "refresh_token":  # noqa: S105 (a hint name, not a secret)
            order.reverse()
        for model in order:
            found = list(model.objects.filter(**lookup).select_related("user"))
            if not found:
                continue
            for item in found:
                if isinstance(item, refresh_token_model):
                    if item.token_family:
                        refresh_token_model.revoke_family(item.token_family)
                    else:
                        item.revoke()
                else:
                    revoke_access_token(item)
                record_event(
                    type=AuditEvent.Type.TOKEN_REVOKED,
                    request=audit_request(request),
                    subject=item.user,
                    client=client,
                    token_type="refresh_token"
                    if isinstance(item, refresh_token_model)
                    else "access_token",
                    via="revocation endpoint",
                )
            return
        if revoked_jwt is not None:
            record_event(
                type=AuditEvent.Type.TOKEN_REVOKED,
                request=audit_request(request),
                client=client,
                token_type="access_token",  # noqa: S106 (a token kind, not a secret)
                via="revocation endpoint",
                jti=revoked_jwt["jti"],
            )
