"""A user agent string in words people recognise: "Firefox on Windows", "Safari on iPhone".

Only for display (sessions and activity pages): nothing decides anything from it, so a short
list of the common browsers and systems is enough; anything else is shown by its first word.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = [
    (re.compile(r"\bEdg(?:e|A|iOS)?/"), "Edge"),
    (re.compile(r"\bOPR/|\bOpera\b"), "Opera"),
    (re.compile(r"\bSamsungBrowser/"), "Samsung Internet"),
    (re.compile(r"\bFirefox/|\bFxiOS/"), "Firefox"),
    (re.compile(r"\bHeadlessChrome/"), "Chrome (headless)"),
    (re.compile(r"\bChrome/|\bCriOS/|\bChromium/"), "Chrome"),
    (re.compile(r"\bVersion/[\d.]+.*\bSafari/"), "Safari"),
]
_SYSTEMS = [
    (re.compile(r"\biPhone\b"), "iPhone"),
    (re.compile(r"\biPad\b"), "iPad"),
    (re.compile(r"\bAndroid\b"), "Android"),
    (re.compile(r"\bCrOS\b"), "ChromeOS"),
    (re.compile(r"\bWindows\b"), "Windows"),
    (re.compile(r"\bMac OS X\b|\bMacintosh\b"), "macOS"),
    (re.compile(r"\bLinux\b"), "Linux"),
]


def describe_user_agent(user_agent: str) -> str:
    """ "Chrome on Linux", "Firefox", "curl", or "Unknown device"."""
    text = (user_agent or "").strip()
    if not text:
        return _("Unknown device")
    browser = next((name for pattern, name in _BROWSERS if pattern.search(text)), "")
    system = next((name for pattern, name in _SYSTEMS if pattern.search(text)), "")
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    if browser or system:
        return browser or system
    # A tool or an app: its product name ("curl/8.5.0" → "curl"), never the whole string.
    return text.split("/", 1)[0].split(" ", 1)[0][:40] or _("Unknown device")
