"""The SCIM schemas this directory serves (RFC 7643 §7): the core User and Group and the
enterprise extension, with the attributes it stores and nothing else.

scim2-models' own `User` declares every attribute of RFC 7643 §4.1 (addresses, ims, x509
certificates, ...); publishing it would promise clients that this IdP keeps them. These models
keep the standard URNs and attribute names but declare only what `scim.resources` maps, and
mark what is computed as read-only (`displayName`, `groups`), so /Schemas
tells a client (and a conformance checker) exactly what it can write and read back.

`active` is required: a directory account is active or not, and a client that leaves it out
or removes it (RFC 7644 §3.5.2.2) would ask for neither.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import EmailStr, Field
from scim2_models import (
    AnyExtension,
    CaseExact,
    ComplexAttribute,
    Extension,
    Mutability,
    Reference,
    Required,
    Resource,
    Returned,
    Uniqueness,
)
from scim2_models import EnterpriseUser as StandardEnterpriseUser
from scim2_models import Group as StandardGroup
from scim2_models import User as StandardUser


class Name(ComplexAttribute):
    family_name: str | None = None
    given_name: str | None = None


class Email(ComplexAttribute):
    """The person's one address (the first a client sends, or the one it marks primary)."""

    value: EmailStr | None = None
    type: str | None = None


class GroupMembership(ComplexAttribute):
    value: Annotated[str | None, Mutability.read_only] = None
    # "Group": the name of the resource type referenced, not a forward reference.
    ref: Annotated[Reference["Group"] | None, Mutability.read_only] = Field(  # type: ignore[type-arg]  # noqa: UP037
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    display: Annotated[str | None, Mutability.read_only] = None


class User(Resource[AnyExtension]):
    __schema__ = StandardUser.__schema__

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """Unique identifier for the User, used to sign in (case-insensitive)."""

    name: Name | None = None
    display_name: Annotated[str | None, Mutability.read_only] = None
    title: str | None = None
    active: Annotated[bool | None, Required.true] = None
    password: Annotated[str | None, Mutability.write_only, Returned.never] = None
    emails: list[Email] | None = None
    groups: Annotated[list[GroupMembership] | None, Mutability.read_only] = None

    Emails: ClassVar[type[ComplexAttribute]] = Email
    Groups: ClassVar[type[ComplexAttribute]] = GroupMembership


class Manager(ComplexAttribute):
    value: Annotated[str | None, Required.true, CaseExact.true] = None
    """The id of the manager's User resource."""


class EnterpriseUser(Extension):
    __schema__ = StandardEnterpriseUser.__schema__

    employee_number: str | None = None
    department: str | None = None
    manager: Manager | None = None


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    """The id of a member User."""

    # "User": the name of the resource type referenced (scim2-models), not a forward reference.
    ref: Annotated[Reference["User"] | None, Mutability.immutable] = Field(  # type: ignore[type-arg]  # noqa: UP037
        None, serialization_alias="$ref", validation_alias="$ref"
    )


class Group(Resource[Any]):
    __schema__ = StandardGroup.__schema__

    display_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    members: list[GroupMember] | None = None

    Members: ClassVar[type[ComplexAttribute]] = GroupMember
