"""Template context shared by every page: the company's branding."""

from django.conf import settings
from django.http import HttpRequest


def branding(request: HttpRequest) -> dict[str, str]:
    return {
        "company_name": settings.IDP_COMPANY_NAME,
        "company_logo_url": settings.IDP_LOGO_URL,
        "support_url": settings.IDP_SUPPORT_URL,
    }
