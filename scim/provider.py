"""What this SCIM service provider is (RFC 7643 §5-§7) and the protocol steps we change in
scim2-server's `ScimService`: which token may do what, and the bounds of a search."""

from __future__ import annotations

from functools import cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    ForbiddenException,
    InvalidFilterException,
    Pagination,
    Patch,
    Reference,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.requests import ScimRequest
from scim2_server.routing import Operation, Target
from scim2_server.service import ScimService

from scim.filters import MAX_FILTER_LENGTH
from scim.schemas import EnterpriseUser, Group, User

# RFC 7644 §3.4.2.4: a page holds at most this many resources, whatever `count` asks.
MAX_RESULTS = 200
DEFAULT_PAGE_SIZE = 100
READ_OPERATIONS = frozenset({Operation.query, Operation.search, Operation.search_with_body})


def service_provider_config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=True),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        pagination=Pagination(
            index=True,
            cursor=False,
            default_pagination_method=Pagination.DefaultPaginationMethod.index,
            default_page_size=DEFAULT_PAGE_SIZE,
            max_page_size=MAX_RESULTS,
        ),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="A SCIM token issued by an administrator of this identity provider",
                spec_uri=Reference[External]("https://www.rfc-editor.org/rfc/rfc6750"),
                primary=True,
            )
        ],
    )


# What the peers send that a strict reading refuses, tolerated (scim2-models' policy):
# Microsoft Entra ID removes a member with `"op": "Remove", "path": "members", "value":
# [{"value": id}]` (the value selects what to remove) and adds to a filtered path that
# matches nothing yet (`emails[type eq "work"].value`). Okta and Entra send booleans as the
# strings "True"/"False": pydantic's lax booleans read them.
PEER_POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    unknown=ScimPolicy.Unknown.ignore,
)


@cache
def provider() -> ScimProvider:
    """Users (with the enterprise extension) and Groups as this directory stores them
    (`scim.schemas`); built once per process."""
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[
            ResourceType.from_resource(User[EnterpriseUser]),
            ResourceType.from_resource(Group),
        ],
        config=service_provider_config(),
        policy=PEER_POLICY,
    )


class DirectoryService(ScimService):
    """scim2-server's protocol with this IdP's rules."""

    def authorize(self, request: ScimRequest, target: Target, resource_type: ResourceType) -> None:
        """The token's scopes: users and/or groups, read-only or read-write."""
        token = request.subject
        if token is None or not token.may_use(resource_type.name):
            raise ForbiddenException(
                detail=f"This SCIM token does not cover {resource_type.name} resources"
            )
        if token.read_only and target.operation not in READ_OPERATIONS:
            raise ForbiddenException(detail="This SCIM token is read-only")

    def read_search(
        self, resource_types: list[ResourceType], payload: Any
    ) -> tuple[SearchRequest[Any], Any]:
        if isinstance(payload, dict):
            expression = next(
                (value for key, value in payload.items() if key.casefold() == "filter"), None
            )
            if isinstance(expression, str) and len(expression) > MAX_FILTER_LENGTH:
                raise InvalidFilterException(
                    detail=f"A filter is at most {MAX_FILTER_LENGTH} characters long"
                )
        return super().read_search(resource_types, payload)


@cache
def service() -> DirectoryService:
    return DirectoryService(provider())
