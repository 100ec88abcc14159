"""Authentication contexts: what the assertion says of the sign-in, and what an app may ask for.

SAML 2.0 Core §3.3.2.2.1: an AuthnRequest may carry `RequestedAuthnContext`, a list of
`AuthnContextClassRef`s and a comparison (`exact` by default, `minimum`, `better`, `maximum`).
This IdP can assert three classes, ordered by strength:

- `Password` and `PasswordProtectedTransport` (a password, over TLS): every sign-in here;
- REFEDS MFA (`https://refeds.org/profile/mfa`): the session also used a second factor.

`unspecified` asks for nothing in particular. A request that only a second factor can meet
sends a password-only session to its second factor first (as `requires_mfa` does); one that no
class here can meet (a smartcard, Kerberos, a declaration reference) is answered with the status
`NoAuthnContext` before anyone signs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from saml2 import saml

PASSWORD = saml.AUTHN_PASSWORD
PASSWORD_PROTECTED_TRANSPORT = saml.AUTHN_PASSWORD_PROTECTED
REFEDS_MFA = "https://refeds.org/profile/mfa"
UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
STRENGTH = {PASSWORD: 1, PASSWORD_PROTECTED_TRANSPORT: 2, REFEDS_MFA: 3}
COMPARISONS = frozenset({"exact", "minimum", "better", "maximum"})


@dataclass(frozen=True)
class Requested:
    """An AuthnRequest's `RequestedAuthnContext`, as kept with the pending request."""

    classes: tuple[str, ...]
    comparison: str = "exact"

    def accepts(self, class_ref: str) -> bool:
        if UNSPECIFIED in self.classes:
            return True
        known = [STRENGTH[c] for c in self.classes if c in STRENGTH]
        strength = STRENGTH[class_ref]
        if self.comparison == "exact":
            return class_ref in self.classes
        if not known:
            return False
        if self.comparison == "minimum":
            return strength >= min(known)
        if self.comparison == "better":
            # "stronger than any one of the authentication contexts specified" (§3.3.2.2.1)
            return strength > min(known)
        return strength <= max(known)  # maximum

    def as_pending(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "comparison": self.comparison}


class Unmeetable(Exception):
    """No class this IdP asserts meets the request (status NoAuthnContext)."""


def requested_from(message: Any) -> Requested | None:
    """The request's `RequestedAuthnContext` (pysaml2's samlp object), or None without one.

    Raises `Unmeetable` for what no class here can meet: only declaration references, an
    unknown comparison, or classes none of which this IdP asserts under that comparison.
    """
    element = getattr(message, "requested_authn_context", None)
    if element is None:
        return None
    comparison = element.comparison or "exact"
    if comparison not in COMPARISONS:
        raise Unmeetable(f"Unknown comparison {comparison!r}.")
    classes = tuple(
        ref.text.strip() for ref in element.authn_context_class_ref or [] if ref is not None
    )
    if not classes:
        raise Unmeetable("Only AuthnContextClassRef is supported, not declaration references.")
    requested = Requested(classes=classes, comparison=comparison)
    if not any(requested.accepts(class_ref) for class_ref in STRENGTH):
        raise Unmeetable("No authentication context this IdP asserts meets the request.")
    return requested


def from_pending(value: Any) -> Requested | None:
    if not isinstance(value, dict):
        return None
    classes = value.get("classes")
    comparison = value.get("comparison")
    if not isinstance(classes, list) or comparison not in COMPARISONS:
        return None
    return Requested(classes=tuple(str(c) for c in classes), comparison=comparison)


def assertable(*, second_factor: bool) -> list[str]:
    """What this session can truthfully be said to have used, strongest first."""
    classes = [PASSWORD_PROTECTED_TRANSPORT, PASSWORD]
    return [REFEDS_MFA, *classes] if second_factor else classes


def class_for(*, requested: Requested | None, second_factor: bool) -> str | None:
    """The class the assertion states: the strongest this session has that the app accepts;
    None when only a second factor would meet the request (step up first)."""
    available = assertable(second_factor=second_factor)
    if requested is None:
        return available[0]
    return next((c for c in available if requested.accepts(c)), None)
