"""The SAML sign-in's steps, around allauth's SAML views (python3-saml):

- `login`: the AuthnRequest (HTTP-Redirect), its ID stashed as this browser's state;
- `acs`: the IdP's cross-site POST kept in a short-lived store behind its own cookie (as
  allauth's ACS does) and the browser sent on to `finish_acs` with its session cookie
  (SameSite=Lax);
- `finish_acs`: ours: python3-saml's checks (signature of the response or assertion by the
  provider's certificate, audience, destination and recipient, validity window, no DTD), then
  ours: an assertion is accepted once (replay), the response answers a request this browser
  made (InResponseTo, unless the provider accepts IdP-initiated sign-in), a transient NameID is
  no identity. Every refusal is audited with the provider as source and answered with the
  branded page, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import time
from http import HTTPStatus
from typing import Any

from allauth.socialaccount.helpers import complete_social_login
from allauth.socialaccount.providers.base.constants import AuthProcess
from allauth.socialaccount.providers.saml import views as allauth_views
from allauth.socialaccount.providers.saml.utils import decode_relay_state, get_app_or_404
from allauth.socialaccount.sessions import LoginSession
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from lxml.etree import LxmlError
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from federation.adapter import refuse
from federation.models import UpstreamProvider
from federation.saml.auth import build_auth, saml_settings
from federation.services import record_refusal
from federation.views import unavailable

# How long an accepted assertion's ID is remembered when it states no NotOnOrAfter (python3-saml
# refuses an expired one, so remembering it until then is enough).
REPLAY_WINDOW_SECONDS = 15 * 60
REPLAY_KEY = "federation:saml:assertion:{slug}:{assertion_id}"


def _disabled(request: HttpRequest, slug: str) -> HttpResponse:
    record_refusal(request=request, slug=slug, reason="provider unknown or disabled")
    return unavailable(request)


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest, organization_slug: str) -> HttpResponse:
    try:
        return allauth_views.login(request, organization_slug=organization_slug)  # type: ignore[no-any-return]
    except Http404:
        return unavailable(request)


def metadata(request: HttpRequest, organization_slug: str) -> HttpResponse:
    """Our service-provider metadata for the provider's administrator."""
    try:
        provider = get_app_or_404(request, organization_slug).get_provider(request)
    except Http404:
        return unavailable(request, status=HTTPStatus.NOT_FOUND)
    config = OneLogin_Saml2_Settings(
        settings=saml_settings(request, provider), sp_validation_only=True
    )
    return HttpResponse(config.get_sp_metadata(), content_type="application/samlmetadata+xml")


def sls(request: HttpRequest, organization_slug: str) -> HttpResponse:
    """Single logout from an upstream SAML provider is not offered (our SP metadata names no
    SingleLogoutService, `federation.saml.auth.saml_settings`): allauth's SAML code reverses
    this URL's name, and a request to it is refused with the branded page."""
    return unavailable(request, status=HTTPStatus.NOT_FOUND)


# Where the ACS keeps the received response for `finish_acs` (allauth's LoginSession: a
# separate, short-lived session store behind its own cookie, set on the ACS's answer).
ACS_SESSION = ("federation_saml_acs", "saml-acs-session")


@csrf_exempt
@require_http_methods(["POST"])
def acs(request: HttpRequest, organization_slug: str) -> HttpResponse:
    """The identity provider's cross-site POST carries no session cookie (SameSite=Lax): the
    response is kept aside and the browser sent on to `finish_acs`, which has its session."""
    response = HttpResponseRedirect(
        reverse("saml_finish_acs", kwargs={"organization_slug": organization_slug})
    )
    kept = LoginSession(request, *ACS_SESSION)
    kept.store["received"] = {
        "https": request.is_secure(),
        "host": request.get_host(),
        "path": request.path_info,
        "post": {
            name: request.POST[name]
            for name in ("SAMLResponse", "RelayState")
            if name in request.POST
        },
    }
    kept.save(response)
    return response


def _refused(request: HttpRequest, slug: str, reason: str, message: Any = None) -> HttpResponse:
    return refuse(
        request,
        slug=slug,
        reason=reason,
        message=message
        or _("The sign-in could not be completed. Try again or sign in another way."),
    ).response


def _first_use(slug: str, auth: Any) -> bool:
    """Whether this assertion (by its ID) is seen here for the first time: remembered until it
    expires, in the shared cache (every process sees it; `add` is atomic)."""
    assertion_id = auth.get_last_assertion_id() or auth.get_last_message_id()
    if not assertion_id:
        return False
    not_on_or_after = auth.get_last_assertion_not_on_or_after()
    seconds = REPLAY_WINDOW_SECONDS
    if not_on_or_after:
        seconds = max(60, int(not_on_or_after - time.time()) + 120)
    return bool(cache.add(REPLAY_KEY.format(slug=slug, assertion_id=assertion_id), True, seconds))


def _in_response_to(encoded: str) -> str | None:
    """The Response's InResponseTo, read with python3-saml's parser (no DTD, no entities)."""
    document = OneLogin_Saml2_XML.to_etree(base64.b64decode(encoded, validate=False))
    return document.get("InResponseTo") or None


@require_http_methods(["GET"])
def finish_acs(request: HttpRequest, organization_slug: str) -> HttpResponse:
    slug = organization_slug
    kept = LoginSession(request, *ACS_SESSION)
    received = kept.store.get("received")
    kept.delete()
    try:
        provider = get_app_or_404(request, slug).get_provider(request)
    except Http404:
        # Unknown, or disabled while the person was at the provider.
        return _disabled(request, slug)
    if not isinstance(received, dict) or not (received.get("post") or {}).get("SAMLResponse"):
        return _refused(request, slug, "no SAML response")
    posted = received["post"]
    auth = build_auth(request, provider, received=received)
    try:
        # The request this answers, as the Response says (unsigned when only the assertion is
        # signed): python3-saml then requires the signed SubjectConfirmationData to say the
        # same, and this browser's session must hold that request (below).
        in_response_to = _in_response_to(str(posted["SAMLResponse"]))
        auth.process_response(request_id=in_response_to)
    except (binascii.Error, ValueError, LxmlError) as error:
        return _refused(request, slug, f"unreadable SAML response: {error}")
    except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError) as error:
        return _refused(request, slug, f"SAML response refused: {error}")
    errors = auth.get_errors()
    if errors:
        why = auth.get_last_error_reason() or ", ".join(errors)
        return _refused(request, slug, f"SAML response refused: {why}")
    if not auth.is_authenticated():
        return _refused(request, slug, "no authenticated assertion")
    if not _first_use(slug, auth):
        return _refused(request, slug, "assertion replayed")
    if auth.get_nameid_format() == OneLogin_Saml2_Constants.NAMEID_TRANSIENT:
        return _refused(request, slug, "transient NameID: no lasting identity")
    try:
        sociallogin = provider.sociallogin_from_response(request, auth)
    except ValueError as error:
        return _refused(request, slug, f"no identity in the assertion: {error}")
    if in_response_to:
        try:
            sociallogin.state = provider.unstash_redirect_state(request, in_response_to)
        except PermissionDenied:
            return _refused(request, slug, "response to a request this browser did not make")
    else:
        row = UpstreamProvider.objects.filter(slug=slug, enabled=True).first()
        if row is None or not row.allow_unsolicited:
            return _refused(request, slug, "unsolicited response (IdP-initiated) not accepted")
        sociallogin.state = {"process": AuthProcess.LOGIN}
        next_url = decode_relay_state(posted.get("RelayState"))
        if next_url:
            sociallogin.state["next"] = next_url
    return complete_social_login(request, sociallogin)  # type: ignore[no-any-return]
