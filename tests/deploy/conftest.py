"""Fixtures for the deployment tests: captured JSON log lines.

Tests marked `scaleout` start real gunicorn processes over PostgreSQL and Redis; they run in the
Makefile's PostgreSQL phase (tests/conftest.py collects them only there).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.conf import settings

from idp.request_log import JsonFormatter
from tests.accounts.conftest import redis_cache  # noqa: F401 (the Redis tests' own database)


class CapturedLogs:
    """Everything the application logs during a test, as production would format it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self, logger: str | None = None) -> list[dict]:
        lines = [json.loads(line) for line in self.text.splitlines() if line.strip()]
        return [line for line in lines if logger is None or line.get("logger") == logger]


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    """A JSON handler on the root logger and on the non-propagating request/audit loggers."""
    captured = CapturedLogs()
    handler = logging.StreamHandler(captured.stream)
    formatter_config = settings.LOGGING["formatters"]["json"]
    handler.setFormatter(
        JsonFormatter(formatter_config["format"], rename_fields=formatter_config["rename_fields"])
    )
    loggers = [
        logging.getLogger(),
        logging.getLogger("idp.request"),
        logging.getLogger("idp.audit"),
    ]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield captured
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
