"""URL map: account flows (allauth), the OIDC provider (DOT + our views), the SAML IdP, admin."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from accounts import views as account_views
from federation import views as federation_views
from idp import branding, health, metrics
from oauth_clients import views as client_views
from scim import views as scim_views

urlpatterns = [
    path("", account_views.home, name="home"),
    # allauth's password and email pages, behind a recent-authentication check (accounts.views);
    # allauth's names, so logs and reverse() see the same pages.
    path(
        "accounts/password/change/",
        account_views.password_change,
        name="account_change_password",
    ),
    path("accounts/password/set/", account_views.password_set, name="account_set_password"),
    path("accounts/email/", account_views.email, name="account_email"),
    # allauth's sign-out, a `next` passing through the front-channel logout page too.
    path("accounts/logout/", account_views.sign_out, name="account_logout"),
    # allauth's two-step set-up pages, carrying `next` on to the recovery codes page.
    path("accounts/2fa/totp/activate/", account_views.activate_totp, name="mfa_activate_totp"),
    path("accounts/2fa/webauthn/add/", account_views.add_webauthn, name="mfa_add_webauthn"),
    # allauth's connections page is the security centre's linked identities (federation/).
    path(
        "accounts/3rdparty/",
        RedirectView.as_view(pattern_name="federation_identities"),
        name="socialaccount_connections",
    ),
    # allauth's GitHub sign-in, the not-available page when no GitHub provider is enabled.
    path("accounts/github/login/", federation_views.github_login, name="github_login"),
    path(
        "accounts/github/login/callback/",
        federation_views.github_callback,
        name="github_callback",
    ),
    path("accounts/", include("allauth.urls")),
    # Upstream sign-in (federation/): home-realm discovery from the sign-in page, the linked
    # identities in the security centre; the providers' own sign-in URLs are allauth's, under
    # /accounts/.
    path("", include("federation.urls")),
    # The employee's app launcher: an account page built on the registry's access rules
    # (oauth_clients.access), so its view lives with the registry. /account/apps/ is taken by
    # the connected apps page.
    path("account/my-apps/", client_views.my_apps, name="account_my_apps"),
    path("account/", include("accounts.urls")),
    # The OIDC provider: DOT's views we keep plus ours, under DOT's namespace.
    path("", include("oauth_clients.oidc.urls", namespace="oauth2_provider")),
    # The admin REST API (adminapi/): service clients with admin scopes; problem details.
    path("api/v1/", include("adminapi.urls")),
    # The SAML 2.0 IdP (oauth_clients/saml/): metadata, single sign-on, IdP-initiated sign-in.
    path("saml/", include("oauth_clients.saml.urls", namespace="saml")),
    # SCIM 2.0 service provider (scim/): Users, Groups and discovery, for bearer tokens only.
    path("scim/v2", scim_views.scim_endpoint, name="scim_root"),
    path("scim/v2/<path:path>", scim_views.scim_endpoint, name="scim"),
    # The admin signs in through allauth's login (same lock and rate limits).
    path("admin/login/", account_views.admin_login, name="admin_login_redirect"),
    path("admin/", admin.site.urls),
    # Django's set_language view (POST, CSRF-checked): the language switcher in every footer.
    path("i18n/", include("django.conf.urls.i18n")),
    # Branding: the admin's colour as CSS (no inline styles), the sign-in button kit for apps.
    path("branding.css", branding.branding_css, name="branding_css"),
    path("button/", branding.button, name="signin_button"),
    # Browsers ask for /favicon.ico where a page names no icon (the admin, JSON documents): the
    # house icon templates/base.html names. Resolved per request, and not permanent: in
    # production its static name carries the file's hash.
    path(
        "favicon.ico",
        RedirectView.as_view(url=lazy(static, str)("idp/favicon.svg")),
        name="favicon",
    ),
    # Operations; idp.middleware.ProbeMiddleware answers these paths first (any Host, plain http).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]

# Branded error pages (templates/400.html … 500.html).
handler400 = "accounts.views.bad_request"
handler403 = "accounts.views.permission_denied"
handler404 = "accounts.views.page_not_found"
handler500 = "accounts.views.server_error"
