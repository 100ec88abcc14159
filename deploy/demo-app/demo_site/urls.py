"""Demo relying party URLs: allauth (the OIDC login and callback) and the demo's own pages."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("", include("demo.urls")),
]
