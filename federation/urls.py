"""Home-realm discovery from the sign-in page and the security centre's linked identities."""

from django.urls import path

from federation import views

urlpatterns = [
    path("sign-in/organisation/", views.discover, name="federation_discover"),
    path("account/identities/", views.identities, name="federation_identities"),
    path(
        "account/identities/<int:account_pk>/remove/",
        views.remove_identity,
        name="federation_remove_identity",
    ),
]
