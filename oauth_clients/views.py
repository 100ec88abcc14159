"""The employee's app launcher (/account/my-apps/): the apps a person may open, searchable.

It lives with the registry, not in `accounts`, because it reads the registry
(`oauth_clients.access.apps_for`); the account pages link to it by URL name only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from oauth_clients import access, selectors
from oauth_clients.models import Client

# A search longer than any app name finds nothing; the cap keeps the work per request bounded.
MAX_QUERY_LENGTH = 100


@dataclass(frozen=True)
class LaunchTile:
    """One app on the page: its name, logo, initial (when it has no logo) and where it opens."""

    client: Client
    url: str  # "" when the app can only be opened from the app itself
    starts_sign_in: bool  # `url` is the app's initiate_login_uri (OIDC Core §4)

    @property
    def initial(self) -> str:
        return (self.client.name.strip()[:1] or "?").upper()


def launch_url(*, client: Client, issuer: str) -> tuple[str, bool]:
    """Where the launcher opens `client`, and whether that starts a sign-in.

    OIDC Core §4 (third-party-initiated login): the app's `initiate_login_uri` with `iss`, our
    issuer, added to its query (the app then sends an authorization request to that issuer).
    `login_hint` and `target_link_uri` are optional there and not sent. Without one, the app's
    home page (`client_uri`) as it is, as the connected apps page links it; without either,
    nothing: the app opens from the app itself. A SAML app opens through IdP-initiated sign-in
    (SAML 2.0 Profiles §4.1.5: `/saml/sso/idp-initiated/<client_id>/`).
    """
    if client.kind == Client.Kind.SAML:
        return reverse("saml:idp_initiated", kwargs={"client_id": client.client_id}), True
    if client.initiate_login_uri:
        parts = urlsplit(client.initiate_login_uri)
        query = "&".join(part for part in (parts.query, urlencode({"iss": issuer})) if part)
        return urlunsplit(parts._replace(query=query)), True
    return client.client_uri, False


def matches(client: Client, query: str) -> bool:
    """The search of the page (and of static/idp/my-apps.js): a part of the name, in either
    case (Unicode's default lower case: Python's `lower()` is JavaScript's `toLowerCase()`)."""
    return query.lower() in client.name.lower()


@login_required
def my_apps(request: HttpRequest) -> HttpResponse:
    """The apps the signed-in person may open (open to everyone, or assigned to them or one of
    their groups), alphabetical, each with its launch link; `?q=` narrows the list by name
    (the page's script does the same as one types)."""
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]
    apps = access.apps_for(user=request.user)
    issuer = selectors.issuer()
    tiles = []
    for client in apps:
        if query and not matches(client, query):
            continue
        url, starts_sign_in = launch_url(client=client, issuer=issuer)
        tiles.append(LaunchTile(client=client, url=url, starts_sign_in=starts_sign_in))
    return render(
        request,
        "oauth_clients/my_apps.html",
        {"tiles": tiles, "query": query, "total": len(apps)},
    )
