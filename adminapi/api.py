"""The API object: its routers, OpenAPI document, and every error answered as problem details.

Errors raised anywhere below a view (our `Problem`, Django's `ValidationError`,
`PermissionDenied` and `Http404`, the framework's validation and auth errors, throttling) are
mapped here, in one place, to RFC 9457 problem details (adminapi/problems.py). What happens
before or beside the framework (a body too large, a media type it cannot read, a method or path
it does not serve) is answered by `guard` and `not_found` in adminapi/urls.py.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from accounts.permissions import LastSuperuserError
from adminapi import audit, clients, integrations, users
from adminapi.auth import ApiRateThrottle, unauthorized
from adminapi.problems import (
    PROBLEM_CONTENT_TYPE,
    Problem,
    from_validation_error,
    problem_response,
)


class AdminApi(NinjaAPI):
    """NinjaAPI whose document says what is served: errors as application/problem+json."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        document = super().get_openapi_schema(**kwargs)
        for operations in document["paths"].values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content") or {}
                    if int(status) >= 400 and "application/json" in content:
                        response["content"] = {PROBLEM_CONTENT_TYPE: content["application/json"]}
        return document


api = AdminApi(
    title="Identity provider admin API",
    version="1",
    description=(
        "Administer people, groups, client apps and integrations (webhooks, SCIM tokens, "
        "provisioning targets) and read the audit log. Authenticate with an "
        "access token from the client-credentials grant of a service client that holds the "
        "admin scopes. Errors are RFC 9457 problem details. Guide: docs/guides/admin-api.md."
    ),
    urls_namespace="adminapi",
    openapi_url="/schema/",
    docs_url=None,
    throttle=[ApiRateThrottle()],
)
api.add_router("/users/", users.router)
api.add_router("/groups/", users.groups_router)
api.add_router("/clients/", clients.router)
api.add_router("/audit-events/", audit.router)
api.add_router("/webhooks/", integrations.webhooks_router)
api.add_router("/scim-tokens/", integrations.scim_tokens_router)
api.add_router("/provisioning-targets/", integrations.targets_router)


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return problem_response(exc)


@api.exception_handler(NinjaValidationError)
def _invalid_input(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    """pydantic's findings (wrong type, missing or unknown field) as field problems."""
    errors = []
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", ())]
        # ("body", "payload", "field", ...) or ("query", "name"): the field as the client sent it.
        if location[:1] == ["body"]:
            location = location[2:]
        elif location:
            location = location[1:]
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": ".".join(location), "message": message})
    return problem_response(
        Problem(
            HTTPStatus.BAD_REQUEST,
            "; ".join(f"{item['field']}: {item['message']}" for item in errors),
            code="invalid-request",
            title="The request is not valid",
            errors=errors,
        )
    )


@api.exception_handler(ValidationError)
def _service_refused(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return problem_response(from_validation_error(exc))


@api.exception_handler(LastSuperuserError)
def _last_superuser(request: HttpRequest, exc: LastSuperuserError) -> HttpResponse:
    return problem_response(
        Problem(
            HTTPStatus.CONFLICT,
            str(exc),
            code="last-superuser",
            title="The last active superuser cannot be removed",
        )
    )


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    """The permission rule (accounts.permissions) refused the service client."""
    return problem_response(
        Problem(
            HTTPStatus.FORBIDDEN,
            str(exc),
            code="forbidden",
            title="The service client may not do this",
        )
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem_response(Problem(HTTPStatus.NOT_FOUND, code="not-found"))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem_response(
        unauthorized("Send an access token: Authorization: Bearer <token>.", presented=False)
    )


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    headers = {"Retry-After": str(int(exc.wait) + 1)} if exc.wait is not None else {}
    return problem_response(
        Problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            "Too many calls: slow down and try again later.",
            code="rate-limited",
            headers=headers,
        )
    )


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return problem_response(too_large())


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """The framework's own HTTP errors (an unreadable JSON body is one: 400)."""
    return problem_response(Problem(exc.status_code, str(exc), code=_code_for(exc.status_code)))


def _code_for(status: int) -> str:
    return "invalid-request" if status == HTTPStatus.BAD_REQUEST else ""


def too_large() -> Problem:
    return Problem(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "The request body is larger than this API reads.",
        code="body-too-large",
    )


def schema_document() -> dict[str, Any]:
    """The OpenAPI document as served at /api/v1/schema/."""
    return dict(api.get_openapi_schema())
