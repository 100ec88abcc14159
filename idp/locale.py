"""The app's `ui_locales` (OIDC Core §3.1.2.1) as the language of the sign-in it started.

Order of choice for a page's language: the person's own choice (the switcher in every page's
footer: Django's `set_language` view and its cookie) > the `ui_locales` of the authorize request
being served > the browser's Accept-Language > English (`settings.LANGUAGE_CODE`). Django's
LocaleMiddleware, just above this one, has already applied the cookie and Accept-Language; this
middleware only overrides Accept-Language with the app's hint when there is no cookie.

The hint is read where the authorize request is visible: on /o/authorize/ itself (query or form
body), and in the `next` parameter of the pages it sends the person to (sign-in, sign-up,
re-authentication: `next=/o/authorize/?…&ui_locales=de`). The pages of the flow that carry no
`next` (allauth keeps it in its own state between the password and the code step) use the
language remembered in the session for this authorize request; it is forgotten when an authorize
request comes without a hint or when the flow hands over to the app. It is never a cookie:
`ui_locales` is the app's guess for this sign-in, not the person's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation

from accounts.signin_request import authorize_parameter

SESSION_KEY = "idp_ui_locale"
# ui_locales is a short list in preference order; an oversized one is not read past this.
MAX_TAGS = 10
# A longer `ui_locales` is no list of language tags of ours.
UI_LOCALES_MAX_LENGTH = 256
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def first_supported(ui_locales: str) -> str | None:
    """The first BCP47 tag of a space-separated `ui_locales` value we have pages in, or None.

    "de-CH" gives "de"; tags are case-insensitive (BCP47 §2.1.1).
    """
    for tag in ui_locales.split()[:MAX_TAGS]:
        try:
            # Django checks the tag's syntax (and its length) before it looks it up.
            return translation.get_supported_language_variant(tag.lower())
        except LookupError:
            continue
    return None


def chosen_language(request: HttpRequest) -> str | None:
    """The language the person picked with the switcher (Django's language cookie), if any."""
    value = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if not value:
        return None
    try:
        return translation.get_supported_language_variant(value)
    except LookupError:
        return None


def form_value(request: HttpRequest, name: str) -> str:
    """A field of the POST form, only when the body is one (reading another kind of body here
    would consume it before the view)."""
    if request.method != "POST" or request.content_type != FORM_CONTENT_TYPE:
        return ""
    if (request.content_params or {}).get("charset", "utf-8").strip('"').lower() != "utf-8":
        # RFC 6749 Appendix B: a form body is UTF-8. Django cannot read another charset (an
        # error before the view); the view answers it in the protocol's own way.
        return ""
    return request.POST.get(name) or ""


class UILocalesMiddleware:
    """Activates the language of the authorize request's `ui_locales` when no choice was made.

    Placed right after Django's LocaleMiddleware, which then reports the language it finds
    active in `Content-Language` (and already adds `Vary: Accept-Language`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Resolved at the first request: the URLconf may not be importable at start-up.
        self._authorize_path: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if chosen_language(request) is not None:
            return self.get_response(request)
        at_authorize = request.path_info == self.authorize_path()
        language = self.hinted_language(request, at_authorize=at_authorize)
        if language is not None:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        if at_authorize and hands_over_to_app(response):
            # The sign-in is over: the next authorize request brings its own hint, or none.
            self.remember(request, None)
        return response

    def authorize_path(self) -> str:
        if self._authorize_path is None:
            self._authorize_path = reverse("oauth2_provider:authorize")
        return self._authorize_path

    def hinted_language(self, request: HttpRequest, *, at_authorize: bool) -> str | None:
        if at_authorize:
            # A new authorize request replaces the remembered hint, with its own or with none.
            # OIDC Core §3.1.2.1: the authorization request may come as GET query or POST form.
            ui_locales = request.GET.get("ui_locales") or form_value(request, "ui_locales")
            language = first_supported(ui_locales)
            self.remember(request, language)
            return language
        # The sign-in page of an authorization request: the hint rides in its `next`.
        next_url = request.GET.get("next") or form_value(request, "next")
        hint = authorize_parameter(next_url, "ui_locales", max_length=UI_LOCALES_MAX_LENGTH)
        language = first_supported(hint)
        if language is not None:
            return language
        return self.remembered(request)

    @staticmethod
    def remembered(request: HttpRequest) -> str | None:
        session = getattr(request, "session", None)
        if session is None:
            return None
        value = session.get(SESSION_KEY)
        if not value:
            return None
        try:
            return translation.get_supported_language_variant(value)
        except LookupError:
            return None

    @staticmethod
    def remember(request: HttpRequest, language: str | None) -> None:
        """Written only when it changes, so an ordinary request never saves the session."""
        session = getattr(request, "session", None)
        if session is None or session.get(SESSION_KEY) == language:
            return
        if language is None:
            session.pop(SESSION_KEY, None)
        else:
            session[SESSION_KEY] = language


def hands_over_to_app(response: HttpResponse) -> bool:
    """A redirect off this site: the authorization response (or error) on its way to the app."""
    if not 300 <= response.status_code < 400:
        return False
    location = urlsplit(response.get("Location", ""))
    return bool(location.scheme or location.netloc)
