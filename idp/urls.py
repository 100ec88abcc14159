"""URL map: account flows (allauth), the OIDC provider (DOT + our views), admin."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from idp import health, metrics

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    # The OIDC provider: DOT's views we keep plus ours, under DOT's namespace.
    path("", include("oauth_clients.urls", namespace="oauth2_provider")),
    path("admin/", admin.site.urls),
    # Operations; idp.middleware.ProbeMiddleware answers these paths first (any Host, plain http).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]
