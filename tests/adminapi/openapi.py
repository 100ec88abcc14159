"""Checks of answers against the served OpenAPI document (tests only)."""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS31Validator


def validate_answer(
    document: dict[str, Any], *, path: str, method: str, status: int, content_type: str, body: Any
) -> None:
    """Fails unless the document declares `status` for the operation and `body` fits its
    schema (its $refs resolved inside the document)."""
    operation = document["paths"][path][method.lower()]
    response = operation["responses"][str(status)]
    if body is None:
        assert "content" not in response or not response["content"], response
        return
    media = response["content"][content_type.split(";")[0]]
    schema = {**media["schema"], "components": document["components"]}
    OAS31Validator(schema).validate(body)
