"""Who may use the app, enforced by the engine: at authorization and at every use of a grant.

The rules are the registry's (`oauth_clients.access.may_use`); this module asks them with the
person's groups read at most once per oauthlib request (`GrantState.groups`), so the access
check, the roles and the `groups` claim of one token request share one read, and an app open
to everyone costs no query at all. Where it is asked:

- the authorization endpoint, after sign-in and before consent (`views/authorize.py`: the
  no-access page; `AuthorizationPolicyMixin.validate_silent_authorization` for prompt=none);
- the code exchange and the refresh grant (`TokenPolicyMixin.validate_code`,
  `validate_refresh_token`: `invalid_grant`);
- a token's use (`TokenPolicyMixin.validate_bearer_token`: userinfo and protected resources
  answer `invalid_token`) and introspection (`tokens.introspect_token`: inactive).

A client-credentials token acts for no person and is never asked about.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients.access import EffectiveGroups, may_use
from oauth_clients.models import Client
from oauth_clients.oidc.grant_state import grant_state


def audit_request(request: Any) -> HttpRequest:
    """A Django request carrying an oauthlib request's headers (client IP, user agent) for
    `record_event`, which reads `request.META`. DOT copies `META` into the oauthlib headers."""
    http_request = HttpRequest()
    http_request.META = dict(request.headers or {})
    return http_request


def request_groups(request: Any, user: Any) -> EffectiveGroups:
    """`user`'s groups for this oauthlib request, read on first use and kept in its state."""
    state = grant_state(request)
    if state.groups is None or state.groups.user_id != user.pk:
        state.groups = EffectiveGroups(user_id=user.pk)
    return state.groups


def may_use_app(*, request: Any, user: Any, client: Client) -> bool:
    """Whether `user` may still use `client` (an oauthlib request's person and app)."""
    return may_use(user=user, client=client, group_ids=request_groups(request, user))


def record_access_denied(
    *, user: Any, client: Client, request: HttpRequest | None, prompt_none: bool = False
) -> None:
    """Audit a refused sign-in: the person reached the app's sign-in but may not use it."""
    record_event(
        type=AuditEvent.Type.ACCESS_DENIED,
        request=request,
        actor=user,
        subject=user,
        client=client,
        silent=prompt_none,
    )
