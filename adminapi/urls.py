"""/api/v1/: the framework's routes, each behind `guard`, and a problem-details 404 for any
other path under the prefix (the site's branded HTML 404 is for browsers)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt

from adminapi.api import api, too_large
from adminapi.problems import PROBLEM_CONTENT_TYPE, Problem, problem_response
from idp.input_limits import request_holds_nul

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = frozenset({"application/json"})


def guard(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """What the framework answers outside problem details, answered as problems: a body over
    IDP_API_MAX_BODY_BYTES (413, from Content-Length, before anything reads it), a body that is
    not JSON (415), a NUL character in the path or the query (400; idp/input_limits.py: the
    bodies' are refused by adminapi/schemas.py), a method the path does not serve (405, with
    Allow)."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.IDP_API_MAX_BODY_BYTES:
            return problem_response(too_large())
        if request.method in BODY_METHODS and length:
            media_type = request.content_type or ""
            if media_type not in JSON_TYPES:
                return problem_response(
                    Problem(
                        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                        "Send the body as application/json.",
                        code="unsupported-media-type",
                    )
                )
        if request_holds_nul(request):
            return problem_response(
                Problem(
                    HTTPStatus.BAD_REQUEST,
                    "The path and the query may not contain NUL characters.",
                    code="invalid-request",
                    title="The request is not valid",
                )
            )
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            # The framework's root view (`api-root`, which only names the prefix) raises it.
            return not_found(request)
        if response.status_code == HTTPStatus.METHOD_NOT_ALLOWED and (
            response.get("Content-Type") != PROBLEM_CONTENT_TYPE
        ):
            problem = problem_response(
                Problem(HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method} is not served here.")
            )
            problem["Allow"] = response.get("Allow", "")
            return problem
        return response

    return guarded


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return problem_response(
        Problem(HTTPStatus.NOT_FOUND, "No such path in this API.", code="not-found")
    )


def _guarded(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = guard(pattern.callback)
    return patterns


_patterns, _app_name, _namespace = api.urls
app_name = "adminapi"
urlpatterns = [
    *_guarded(list(_patterns)),
    re_path(r"^(?P<rest>.*)$", not_found, name="not-found"),
]
