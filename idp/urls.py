"""URL map: account flows (allauth), the OIDC provider (DOT + our views), admin."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    # The OIDC provider: DOT's views we keep plus ours, under DOT's namespace.
    path("", include("oauth_clients.urls", namespace="oauth2_provider")),
    path("admin/", admin.site.urls),
]
