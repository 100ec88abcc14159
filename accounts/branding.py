"""The company's branding: read (cached, never failing) and changed (audited) in one place.

Every page reads it through the `idp.context_processors.branding` context processor; the
`/branding.css` view turns the primary colour into CSS custom properties (the CSP forbids inline
styles). The row is cached in Django's cache and the cache is dropped by `update_branding`, the
only writer. When neither the cache nor the database answers (an error page while the database is
down), the IDP_COMPANY_NAME / IDP_LOGO_URL / IDP_SUPPORT_URL settings are used.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.http import HttpRequest

from accounts.audit import record_event
from accounts.models import AuditEvent, Branding

logger = logging.getLogger(__name__)

CACHE_KEY = "idp:branding:v1"
CACHE_SECONDS = 3600
DEFAULT_PRIMARY_COLOR = "#1d4ed8"
EDITABLE_FIELDS = ("company_name", "logo_url", "primary_color", "support_url")
# Cached in place of a row when none exists, so the database is asked once, not on every page.
NO_ROW: dict[str, str] = {}
# After a database error this process serves the settings for a while without asking again, so
# error pages during an outage do not each wait for a connection timeout.
DATABASE_RETRY_SECONDS = 30.0
_database_failed_at: float | None = None


@dataclass(frozen=True)
class BrandingValues:
    """What pages show: the admin's values where set, the settings otherwise."""

    company_name: str
    logo_url: str
    primary_color: str
    support_url: str

    @property
    def version(self) -> str:
        """Changes whenever the CSS would; versions the /branding.css URL and is its ETag."""
        return hashlib.sha256(branding_css(self).encode()).hexdigest()[:16]


def _from_row(row: dict[str, str]) -> BrandingValues:
    return BrandingValues(
        company_name=row.get("company_name") or settings.IDP_COMPANY_NAME,
        logo_url=row.get("logo_url") or settings.IDP_LOGO_URL,
        primary_color=(row.get("primary_color") or DEFAULT_PRIMARY_COLOR).lower(),
        support_url=row.get("support_url") or settings.IDP_SUPPORT_URL,
    )


def _cached_row() -> dict[str, str] | None:
    try:
        return cache.get(CACHE_KEY)
    except Exception:  # a cache outage (Redis down) must not break any page
        logger.warning("branding cache unavailable", exc_info=True)
        return None


def _load_row() -> dict[str, str]:
    row = Branding.objects.filter(pk=Branding.SINGLETON_ID).values(*EDITABLE_FIELDS).first()
    return dict(row) if row else NO_ROW


def _database_recently_failed() -> bool:
    failed_at = _database_failed_at
    return failed_at is not None and time.monotonic() - failed_at < DATABASE_RETRY_SECONDS


def get_branding(*, use_database: bool = True) -> BrandingValues:
    """The current branding. Never raises: a failing cache or database gives the settings.

    `use_database=False` reads the cache only (the 500 page: the database may be what failed).
    """
    global _database_failed_at
    row = _cached_row()
    if row is None and use_database and not _database_recently_failed():
        try:
            row = _load_row()
        except DatabaseError:
            _database_failed_at = time.monotonic()
            logger.warning("branding: database unavailable, using the settings", exc_info=True)
            return _from_row(NO_ROW)
        _database_failed_at = None
        try:
            cache.set(CACHE_KEY, row, CACHE_SECONDS)
        except Exception:  # see _cached_row
            logger.warning("branding cache unavailable", exc_info=True)
    return _from_row(row or NO_ROW)


def invalidate_branding_cache() -> None:
    try:
        cache.delete(CACHE_KEY)
    except Exception:  # see _cached_row; the entry then expires by itself
        logger.warning("branding cache unavailable", exc_info=True)


@transaction.atomic
def update_branding(
    *,
    actor: Any,
    company_name: str = "",
    logo_url: str = "",
    primary_color: str = "",
    support_url: str = "",
    request: HttpRequest | None = None,
) -> list[str]:
    """Set the branding (empty values fall back to the settings). Returns the changed fields.

    Validates every field first (`ValidationError` by field); writes one audit row with the
    old and new values (none of them secret); every process sees the change on its next page.
    """
    branding = Branding.objects.select_for_update().filter(
        pk=Branding.SINGLETON_ID
    ).first() or Branding(id=Branding.SINGLETON_ID)
    values = {
        "company_name": company_name.strip(),
        "logo_url": logo_url.strip(),
        "primary_color": primary_color.strip().lower(),
        "support_url": support_url.strip(),
    }
    changed = sorted(field for field, value in values.items() if getattr(branding, field) != value)
    created = branding._state.adding
    if not changed and not created:
        return []
    before = {field: getattr(branding, field) for field in changed}
    for field, value in values.items():
        setattr(branding, field, value)
    branding.full_clean()
    branding.save()
    record_event(
        type=AuditEvent.Type.BRANDING_CHANGED,
        request=request,
        actor=actor,
        fields=changed,
        before=before,
        after={field: values[field] for field in changed},
    )
    # Drop the cached row now and again after commit, so no reader re-caches the old values
    # between the two.
    invalidate_branding_cache()
    transaction.on_commit(invalidate_branding_cache)
    return changed


# --- CSS -------------------------------------------------------------------------------------


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of #rrggbb."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two #rrggbb colours (1 to 21)."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _darken(color: str, factor: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*(round(c * factor) for c in (r, g, b)))


def readable_on_light(color: str, *, background: str = "#f3f4f6", minimum: float = 4.5) -> str:
    """The colour itself, or the first darker shade of it that reaches WCAG AA on the page
    background (links and focus text stay readable whatever colour an admin picks)."""
    shade = color
    factor = 1.0
    while contrast_ratio(shade, background) < minimum and factor > 0:
        factor = round(factor - 0.05, 2)
        shade = _darken(color, factor)
    return shade


def text_on(color: str) -> str:
    """White or near-black, whichever reads better on `color` (button labels)."""
    dark = "#111827"
    return "#ffffff" if contrast_ratio("#ffffff", color) >= contrast_ratio(dark, color) else dark


def branding_css(values: BrandingValues) -> str:
    """The stylesheet /branding.css serves: the brand colour as custom properties of idp.css."""
    color = values.primary_color
    return (
        "/* Company branding (set in the admin); served by idp.branding.branding_css. */\n"
        ":root {\n"
        f"  --brand: {color};\n"
        f"  --brand-dark: {readable_on_light(color)};\n"
        f"  --brand-text: {text_on(color)};\n"
        "}\n"
        "button, .button, input[type=submit] { color: var(--brand-text); }\n"
        "button.secondary, .button.secondary { color: var(--text); }\n"
        "button.danger, .button.danger { color: #fff; }\n"
        ".site-header { border-top: 4px solid var(--brand); }\n"
    )


CONTEXT_NAMES = (
    "company_name",
    "company_logo_url",
    "support_url",
    "brand_color",
    "branding_version",
)


def as_context(values: BrandingValues) -> dict[str, Any]:
    """Template variables every page uses (base.html, login, consent, errors)."""
    return {
        "company_name": values.company_name,
        "company_logo_url": values.logo_url,
        "support_url": values.support_url,
        "brand_color": values.primary_color,
        "branding_version": values.version,
    }
