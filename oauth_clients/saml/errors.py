"""Every refusal of the SAML engine in one place: its SAML status, and the words a person reads.

Two kinds (SAML 2.0 Profiles §4.1.4.1, §4.1.4.2):
- `Refusal`: nothing we could trust to answer to (malformed message, unknown or disabled app, an
  ACS the app did not register, an oversized message). The person gets the branded error page;
  no browser is ever sent to an address the app did not register.
- `StatusError`: the app and one of its registered ACS endpoints are known; the app gets a
  `samlp:Response` with the status (SAML 2.0 Core §3.2.2.2) and no assertion.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from saml2 import samlp

REQUESTER = samlp.STATUS_REQUESTER
RESPONDER = samlp.STATUS_RESPONDER
VERSION_MISMATCH = samlp.STATUS_VERSION_MISMATCH
REQUEST_DENIED = samlp.STATUS_REQUEST_DENIED
NO_PASSIVE = samlp.STATUS_NO_PASSIVE
NO_AUTHN_CONTEXT = samlp.STATUS_NO_AUTHN_CONTEXT
INVALID_NAMEID_POLICY = samlp.STATUS_INVALID_NAMEID_POLICY
REQUEST_UNSUPPORTED = samlp.STATUS_REQUEST_UNSUPPORTED
UNKNOWN_PRINCIPAL = samlp.STATUS_UNKNOWN_PRINCIPAL

# What the person reads on the branded page, by reason.
USER_MESSAGES = {
    "malformed": _("The app sent a sign-in request that cannot be read."),
    "too_large": _("The app sent a sign-in request that is too large."),
    "unknown_app": _("This app is not registered here, or it has been disabled."),
    "acs": _("The app asked to send you back to an address it has not registered."),
    "binding": _("The app asked for an answer this sign-in service cannot send."),
    "expired": _("This sign-in request has expired. Go back to the app and sign in again."),
}

# The same refusals of a sign-out request (SAML 2.0 Profiles §4.4: single logout).
LOGOUT_MESSAGES = {
    "malformed": _("The app sent a sign-out request that cannot be read."),
    "too_large": _("The app sent a sign-out request that is too large."),
    "unknown_app": _("This app is not registered here, or it has been disabled."),
    "no_slo": _("The app sent a sign-out request but registered no address to answer it at."),
    "expired": _("This sign-out request has expired. Go back to the app and sign out again."),
}


class Refusal(Exception):
    """A request answered with the branded error page (no ACS to trust)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    @property
    def user_message(self) -> str:
        return str(USER_MESSAGES.get(self.reason, USER_MESSAGES["malformed"]))

    @property
    def logout_message(self) -> str:
        return str(LOGOUT_MESSAGES.get(self.reason, LOGOUT_MESSAGES["malformed"]))


class StatusError(Exception):
    """A request answered with a SAML Response carrying this status (the ACS is trusted)."""

    def __init__(self, detail: str, *, status: str = REQUEST_DENIED, top: str = REQUESTER) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.top = top
