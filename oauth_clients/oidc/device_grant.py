"""oauthlib's device authorization grant (RFC 8628), with what it leaves out filled in.

- `DeviceAuthorizationEndpoint`: oauthlib's endpoint (§3.1-3.2) with an unknown client
  answered `invalid_client` (RFC 6749 §5.2) and its Content-Type check read as a media type
  (oauthlib compares the whole header, so a client sending
  `application/x-www-form-urlencoded;charset=UTF-8`, as Node's fetch does, was refused), the
  client's right to the grant and the requested scopes checked (oauthlib checks neither), and
  the codes stored hashed (`oauth_clients.oidc.device`) instead of DOT's clear `DeviceGrant`.
- `DeviceCodeGrant`: oauthlib's token-side grant never reads the `device_code` (DOT checks it in
  its own view, by the clear code, for any client). Ours asks the validator
  (`TokenPolicyMixin.validate_device_code`: bound to its client, used once, pending /
  slow_down / expired / denied) and takes the scopes from the approved authorization.
- `OpenIDDeviceCodeGrant`: the ID token for an `openid` authorization, as oauthlib's OpenID
  refresh grant adds one (a token modifier calling the validator's `finalize_id_token`).
- `Server`: oauthlib's OpenID server with that grant (DOT's `OAUTH2_SERVER_CLASS`).
"""

from __future__ import annotations

import json
from typing import Any

from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors, utils
from oauthlib.oauth2.rfc6749.endpoints.base import catch_errors_and_unavailability
from oauthlib.oauth2.rfc8628.endpoints.device_authorization import (
    DeviceAuthorizationEndpoint as OAuthlibDeviceAuthorizationEndpoint,
)
from oauthlib.oauth2.rfc8628.grant_types.device_code import (
    DeviceCodeGrant as OAuthlibDeviceCodeGrant,
)
from oauthlib.openid import Server as OAuthlibOpenIDServer
from oauthlib.openid.connect.core.grant_types.base import GrantTypeBase as OpenIDGrantTypeBase

from oauth_clients.oidc import device
from oauth_clients.oidc.app_access import audit_request
from oauth_clients.oidc.tokens import generate_token

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class DeviceAuthorizationEndpoint(OAuthlibDeviceAuthorizationEndpoint):
    """POST /o/device-authorization/ (RFC 8628 §3.1): the codes for a device."""

    def __init__(self, request_validator: Any) -> None:
        super().__init__(
            request_validator,
            verification_uri=device.verification_uri(),
            expires_in=device.device_code_lifetime(),
            interval=device.poll_interval(),
            verification_uri_complete=None,  # per code: `create_device_authorization_response`
        )

    @catch_errors_and_unavailability
    def validate_device_authorization_request(self, request: Request) -> None:
        """oauthlib's checks, in its order, with the media type compared as a media type, and
        the grant and scopes of the client checked too."""
        for param in ("client_id", "scope"):
            if param in request.duplicate_params:
                raise errors.InvalidRequestFatalError(
                    description=f"Duplicate {param} parameter.", request=request
                )
        media_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != FORM_CONTENT_TYPE:
            raise errors.InvalidRequestError(
                f"Content-Type must be {FORM_CONTENT_TYPE}", request=request
            )
        if not request.client_id:
            raise errors.MissingClientIdError(request=request)
        validator = self.request_validator
        if not validator.validate_client_id(request.client_id, request):
            # RFC 6749 §5.2 `invalid_client` (401), as at the token endpoint; oauthlib answers
            # the authorization endpoint's `invalid_request` here.
            raise errors.InvalidClientError(request=request)
        # RFC 8628 §3.1: client authentication as at the token endpoint (RFC 6749 §3.2.1).
        if validator.client_authentication_required(request):
            if not validator.authenticate_client(request):
                raise errors.InvalidClientError(request=request)
        elif not validator.authenticate_client_id(request.client_id, request):
            raise errors.InvalidClientError(request=request)
        request.grant_type = device.DEVICE_CODE_GRANT
        if not validator.validate_grant_type(
            request.client_id, request.grant_type, request.client, request
        ):
            raise errors.UnauthorizedClientError(request=request)
        request.scopes = utils.scope_to_list(request.scope) or validator.get_default_scopes(
            request.client_id, request
        )
        if not validator.validate_scopes(
            request.client_id, request.scopes, request.client, request
        ):
            raise errors.InvalidScopeError(request=request)

    @catch_errors_and_unavailability
    def create_device_authorization_response(
        self,
        uri: str,
        http_method: str = "POST",
        body: Any = None,
        headers: Any = None,
    ) -> tuple[dict, Any, int]:
        """RFC 8628 §3.2: the codes, stored hashed with the request's client and scopes."""
        request = Request(uri, http_method, body, headers)
        self.validate_device_authorization_request(request)
        device_code = generate_token()
        _row, user_code = device.start_device_authorization(
            client=request.client,
            scopes=list(request.scopes),
            device_code=device_code,
            request=audit_request(request),
        )
        data = {
            "device_code": device_code,
            "user_code": device.display_user_code(user_code),
            "verification_uri": self.verification_uri,
            "verification_uri_complete": device.verification_uri_complete(user_code),
            "expires_in": self.expires_in,
            "interval": self.interval,
        }
        return {}, data, 200


class DeviceCodeGrant(OAuthlibDeviceCodeGrant):
    """The token request of RFC 8628 §3.4, answered as §3.5 says."""

    def validate_token_request(self, request: Request) -> None:
        """oauthlib's checks, then the device code's (which oauthlib leaves out)."""
        for validator in self.custom_validators.pre_token:
            validator(request)
        if request.grant_type != device.DEVICE_CODE_GRANT:
            raise errors.UnsupportedGrantTypeError(request=request)
        for param in ("grant_type", "scope", "device_code"):
            if param in request.duplicate_params:
                raise errors.InvalidRequestError(
                    description=f"Duplicate {param} parameter.", request=request
                )
        if not self.request_validator.authenticate_client(request):
            raise errors.InvalidClientError(request=request)
        self.validate_grant_type(request)
        request.client_id = request.client_id or request.client.client_id
        # oauthlib's request answers its body parameters as attributes (AttributeError if absent).
        device_code = getattr(request, "device_code", None)
        if not device_code:
            raise errors.InvalidRequestError(
                description="Missing device_code parameter.", request=request
            )
        # Raises the RFC 8628 §3.5 errors; sets the person and the approved scopes.
        self.request_validator.validate_device_code(device_code, request.client, request)
        for validator in self.custom_validators.post_token:
            validator(request)

    def create_token_response(self, request: Request, token_handler: Any) -> tuple[dict, str, int]:
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
        except errors.OAuth2Error as error:
            headers.update(error.headers)
            return headers, error.json, error.status_code
        token = token_handler.create_token(request, refresh_token=self.refresh_token)
        for modifier in self._token_modifiers:
            token = modifier(token, token_handler, request)
        self.request_validator.save_token(token, request)
        return headers, json.dumps(token), 200


class OpenIDDeviceCodeGrant(OpenIDGrantTypeBase):
    """The device code grant with an ID token when `openid` was approved (OIDC Core §3.1.3.3
    by analogy, as oauthlib's OpenID refresh grant does for §12.2)."""

    def __init__(self, request_validator: Any = None, **kwargs: Any) -> None:
        self.proxy_target = DeviceCodeGrant(request_validator=request_validator, **kwargs)
        self.register_token_modifier(self.add_id_token)


class Server(OAuthlibOpenIDServer):
    """oauthlib's OpenID Connect server with our device code grant (OAUTH2_SERVER_CLASS), and
    the DPoP check (RFC 9449, `TokenPolicyMixin.validate_dpop`) after every token grant's own."""

    def __init__(self, request_validator: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(request_validator, *args, **kwargs)
        self.device_code_grant = OpenIDDeviceCodeGrant(request_validator, **kwargs)
        self.grant_types[device.DEVICE_CODE_GRANT] = self.device_code_grant
        # oauthlib's hook for checks of our own: `post_token` validators run at the end of a
        # grant's `validate_token_request`, their OAuth2Error answered as the grant's error.
        # This server's own grant objects (the OpenID ones pass to the OAuth 2 grant inside).
        for grant in (
            self.auth_grant,
            self.openid_connect_auth,
            self.refresh_grant,
            self.credentials_grant,
            self.device_code_grant,
        ):
            grant.custom_validators.post_token.append(request_validator.validate_dpop)
