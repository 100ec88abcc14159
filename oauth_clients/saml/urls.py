"""The SAML IdP's URL map, under /saml/ (namespace `saml`)."""

from django.urls import path

from oauth_clients.saml import views

app_name = "saml"

urlpatterns = [
    path("metadata/", views.metadata, name="metadata"),
    path("sso/redirect/", views.sso_redirect, name="sso_redirect"),
    path("sso/post/", views.sso_post, name="sso_post"),
    path("sso/continue/<str:key>/", views.sso_continue, name="sso_continue"),
    path("sso/idp-initiated/<str:client_id>/", views.idp_initiated, name="idp_initiated"),
]
