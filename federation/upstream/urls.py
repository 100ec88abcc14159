"""The OpenID Connect provider's URLs, under allauth's /accounts/ (its registry includes them):
/accounts/upstream/<identifier>/login/ and …/login/callback/ (the redirect URI to register)."""

from django.urls import include, path

from federation.upstream import views

urlpatterns = [
    path(
        "upstream/<slug:provider_id>/",
        include(
            [
                path("login/", views.login, name="upstream_login"),
                path("login/callback/", views.callback, name="upstream_callback"),
            ]
        ),
    )
]
