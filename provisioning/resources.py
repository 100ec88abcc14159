"""The SCIM 2.0 resources and messages the IdP sends to an app, built with scim2-models.

A person becomes a SCIM `User` (RFC 7643 §4.1) with the attributes the app's target chose,
plus the enterprise extension (§4.3) when it asked for it; a leaver a PATCH of `active`
(RFC 7644 §3.5.2). The app's answers are read back with the same models.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    Email,
    EnterpriseUser,
    ListResponse,
    Name,
    PatchOp,
    PatchOperation,
    Role,
    User,
)

from oauth_clients import access
from provisioning.models import ScimTarget


def user_resource(*, target: ScimTarget, user: Any) -> dict[str, Any]:
    """The SCIM User the app should hold for `user` (RFC 7643 §4.1), as JSON.

    `userName` is the IdP's user name and `externalId` the IdP's id for them (the `sub` of
    their ID tokens), so the app can match a SCIM user with a signed-in one.
    """
    chosen = set(target.user_attributes or [])
    values: dict[str, Any] = {
        "user_name": user.get_username(),
        "external_id": str(user.pk),
        "active": bool(user.is_active),
    }
    full_name = user.get_full_name().strip()
    if "name" in chosen and (user.first_name or user.last_name):
        values["name"] = Name(
            given_name=user.first_name or None,
            family_name=user.last_name or None,
            formatted=full_name or None,
        )
    if "displayName" in chosen:
        values["display_name"] = full_name or user.get_username()
    if "emails" in chosen and user.email:
        values["emails"] = [Email(value=user.email, type=Email.Type.work, primary=True)]
    if "title" in chosen and user.job_title:
        values["title"] = user.job_title
    if "roles" in chosen:
        roles = access.roles_for(user=user, client=target.client)
        if roles:
            values["roles"] = [Role(value=role) for role in roles]
    resource: User[Any]
    if target.enterprise_extension:
        resource = User[EnterpriseUser](**values)
        resource[EnterpriseUser] = EnterpriseUser(
            employee_number=user.employee_id or None, department=user.department or None
        )
    else:
        resource = User(**values)
    dumped: dict[str, Any] = resource.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    return dumped


def resource_hash(resource: dict[str, Any]) -> str:
    """What was sent, as a fingerprint: unchanged people are not sent again."""
    return hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()


def deactivation() -> dict[str, Any]:
    """RFC 7644 §3.5.2: a PATCH setting `active` to false (RFC 7643 §4.1.1)."""
    operation = PatchOperation[User].model_validate(
        {"op": "replace", "path": "active", "value": False}
    )
    patch = PatchOp[User].model_validate({"Operations": [operation]})
    dumped: dict[str, Any] = patch.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    return dumped


def user_name_filter(user_name: str) -> str:
    """RFC 7644 §3.4.2.2: `userName eq "…"`, the value a JSON string (quotes escaped)."""
    return f"userName eq {json.dumps(user_name)}"


class Unreadable(Exception):
    """The app's answer is not the SCIM message it should be."""


USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def _core_user(resource: Any) -> Any:
    """A User as the app answered it, without its extensions (RFC 7643 §3.3: each an attribute
    named by its schema URN). Only the core's `id` and `userName` are read here, and an app
    may echo the enterprise extension it was sent or add one of its own, which the strict
    model would refuse as an unknown attribute (the reference server echoes the former)."""
    if not isinstance(resource, dict):
        return resource
    core = {key: value for key, value in resource.items() if not key.startswith("urn:")}
    if isinstance(core.get("schemas"), list):
        core["schemas"] = [schema for schema in core["schemas"] if schema == USER_SCHEMA]
    return core


def created_id(body: Any) -> str:
    """The `id` of the User an app answered a create or replace with (RFC 7644 §3.3)."""
    try:
        resource: User[Any] = User.model_validate(
            _core_user(body), scim_ctx=Context.RESOURCE_CREATION_RESPONSE
        )
    except (ValidationError, TypeError, ValueError) as error:
        raise Unreadable(f"not a SCIM User: {_first_error(error)}") from error
    if not resource.id:
        raise Unreadable("the User has no id")
    return str(resource.id)


def found_id(body: Any, *, user_name: str) -> str | None:
    """The id of the User named `user_name` in a search answer (RFC 7644 §3.4.2), or None."""
    if isinstance(body, dict) and isinstance(body.get("Resources"), list):
        body = {**body, "Resources": [_core_user(resource) for resource in body["Resources"]]}
    try:
        answer = ListResponse[User].model_validate(body, scim_ctx=Context.SEARCH_RESPONSE)
    except (ValidationError, TypeError, ValueError) as error:
        raise Unreadable(f"not a SCIM ListResponse: {_first_error(error)}") from error
    for resource in answer.resources or []:
        # RFC 7643 §4.1.1: userName is case-insensitive at the service provider.
        if (
            isinstance(resource, User)
            and resource.id
            and (resource.user_name or "").casefold() == user_name.casefold()
        ):
            return str(resource.id)
    return None


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
    return type(error).__name__
