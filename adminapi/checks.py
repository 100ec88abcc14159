"""The admin API's settings, checked at start-up (`manage.py check`), not at the first call."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from adminapi.auth import ApiRateThrottle


@register()
def check_api_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    try:
        ApiRateThrottle().parse_rate(settings.IDP_API_RATE_LIMIT)
    except (ValueError, AttributeError):
        errors.append(
            Error(
                f"IDP_API_RATE_LIMIT={settings.IDP_API_RATE_LIMIT!r} is not a rate.",
                hint="Write it as calls/period: 600/m, 20/s, 10000/h or 100000/d.",
                id="adminapi.E001",
            )
        )
    if settings.IDP_API_MAX_BODY_BYTES < 1024:
        errors.append(
            Error(
                "IDP_API_MAX_BODY_BYTES is under 1 KiB: no registration would fit.",
                id="adminapi.E002",
            )
        )
    return errors
