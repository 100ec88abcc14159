"""`make screenshots`: every page of tests/browser/pages.py at 1280 and 390 px, in English and
German, into var/screenshots/<language>/<page>-<width>.png for review.

Not collected by the suite (pytest collects only test_*.py, but takes this file when named on
the command line, as the Makefile does); it reuses the suite's live server and browser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.pages import PAGES, Page, State, prepare, reach

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUT = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WIDTHS = {1280: 800, 390: 844}
# The browser's Accept-Language picks the page's language (idp/locale.py).
LANGUAGES = {"en": "en-GB", "de": "de-DE"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("entry", PAGES, ids=[entry.name for entry in PAGES])
def test_screenshot(live_server, chromium_browser, password, settings, entry: Page, language):
    settings.IDP_STAFF_MFA_REQUIRED = entry.state in (State.STAFF_ENROL, State.STAFF_GATE)
    context = chromium_browser.new_context(locale=LANGUAGES[language])
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        visit = prepare(page, state=entry.state, site=live_server.url, password=password)
        response = reach(page, entry, visit)
        assert response is not None
        assert response.status == entry.status, (entry.name, response.status, page.url)
        assert page.evaluate("document.documentElement.lang") == language, page.url
        (OUT / language).mkdir(parents=True, exist_ok=True)
        for width, height in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(OUT / language / f"{entry.name}-{width}.png"), full_page=True)
    finally:
        context.close()
