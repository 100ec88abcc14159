"""RFC 9457 problem details: every error the admin API answers, in one format and one place.

`Problem` is raised by the API's code; `problem_response` renders it (and the plain HTTP errors
the framework or the URL map answer: 404, 405, 413, 415) as `application/problem+json` with
`type`, `title`, `status`, `detail` and, for field problems, `errors` (one entry per field:
`{"field": ..., "message": ...}`). Specific problems have a `type` URN documented in
docs/guides/admin-api.md; the rest are `about:blank` with the status's phrase as title
(RFC 9457 §4.2.1).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:idp:api:problem:"


class Problem(Exception):
    """An error the API answers as problem details."""

    def __init__(
        self,
        status: int,
        detail: str = "",
        *,
        code: str = "",
        title: str = "",
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or HTTPStatus(status).phrase)
        self.status = status
        self.detail = detail
        self.code = code
        self.title = title or HTTPStatus(status).phrase
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(problem: Problem) -> HttpResponse:
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{problem.code}" if problem.code else "about:blank",
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    response = HttpResponse(
        json.dumps(body), status=problem.status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in problem.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def field_errors(error: ValidationError, *, default_field: str = "") -> list[dict[str, str]]:
    """A Django ValidationError as the problem's `errors` list (field "" for the whole object)."""
    if hasattr(error, "error_dict"):
        return [
            {"field": "" if field == "__all__" else field, "message": str(message)}
            for field, messages in error.message_dict.items()
            for message in messages
        ]
    return [{"field": default_field, "message": str(message)} for message in error.messages]


def from_validation_error(error: ValidationError, *, default_field: str = "") -> Problem:
    errors = field_errors(error, default_field=default_field)
    return Problem(
        HTTPStatus.BAD_REQUEST,
        "; ".join(
            f"{item['field']}: {item['message']}" if item["field"] else item["message"]
            for item in errors
        ),
        code="invalid-request",
        title="The request is not valid",
        errors=errors,
    )
