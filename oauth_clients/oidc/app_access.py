"""Who may use the app, enforced by the engine: at authorization and at every use of a grant.

The rules are the registry's (`oauth_clients.access.may_use`). The lookups that read a token
or a code with its user and app answer them in the same statement (`annotate_app_access`,
`carry_app_access`: the registry's expressions), so a grant or a token use of an assigned app
costs no query more than one of an app open to everyone. A user and app loaded another way
(the authorization endpoint's signed-in person) are asked with the person's groups read at
most once per oauthlib request (`GrantState.groups`), which the `groups` claim shares.
Where it is asked:

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

from django.db.models import Model, QuerySet
from django.http import HttpRequest

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients.access import (
    APP_ACCESS_ATTR,
    AppAccess,
    EffectiveGroups,
    may_use,
    may_use_expression,
    parse_roles,
    roles_expression,
)
from oauth_clients.models import Client
from oauth_clients.oidc.grant_state import grant_state

# The annotations `annotate_app_access` adds to a token's or a code's row.
_MAY_USE = "idp_may_use"
_ROLES = "idp_roles"


def annotate_app_access(
    queryset: QuerySet,
    *,
    roles: bool,
    user_field: str = "user",
    app_field: str = "application",
) -> QuerySet:
    """`queryset` (which loads `user_field` and `app_field`) also answering whether that user
    may use that app and, with `roles`, the app's roles granted to them
    (`oauth_clients.access.may_use_expression`, `roles_expression`).

    For the engine's prepared lookups (idp/db/prepared.py): the access check and the roles
    claim of an assigned app once cost their own queries on every token use and grant (three
    more for userinfo than for an open app). Copy the answers onto the loaded user with
    `carry_app_access` after the row is fetched."""
    annotations: dict[str, Any] = {_MAY_USE: may_use_expression(user_field, app_field)}
    if roles:
        annotations[_ROLES] = roles_expression(user_field, app_field)
    return queryset.annotate(**annotations)


def carry_app_access(
    instance: Model | None, *, user_field: str = "user", app_field: str = "application"
) -> None:
    """Move the annotations of `annotate_app_access` onto the loaded user, for that app:
    `oauth_clients.access.may_use` and `roles_for` read them instead of asking again."""
    if instance is None or not hasattr(instance, _MAY_USE):
        return
    user = getattr(instance, user_field, None)
    app_id = getattr(instance, f"{app_field}_id", None)
    if user is None or app_id is None:
        return
    roles = parse_roles(getattr(instance, _ROLES)) if hasattr(instance, _ROLES) else None
    setattr(
        user,
        APP_ACCESS_ATTR,
        AppAccess(client_id=app_id, may_use=bool(getattr(instance, _MAY_USE)), roles=roles),
    )


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
