"""The SAML IdP's URL map, under /saml/ (namespace `saml`)."""

from django.urls import path

from oauth_clients.saml import slo_soap, slo_views, views

app_name = "saml"

urlpatterns = [
    path("metadata/", views.metadata, name="metadata"),
    path("sso/redirect/", views.sso_redirect, name="sso_redirect"),
    path("sso/post/", views.sso_post, name="sso_post"),
    path("sso/continue/<str:key>/", views.sso_continue, name="sso_continue"),
    path("sso/idp-initiated/<str:client_id>/", views.idp_initiated, name="idp_initiated"),
    path("slo/redirect/", slo_views.slo_redirect, name="slo_redirect"),
    path("slo/post/", slo_views.slo_post, name="slo_post"),
    path("slo/soap/", slo_soap.slo_soap, name="slo_soap"),
    path("slo/continue/<str:key>/", slo_views.slo_continue, name="slo_continue"),
    path("slo/respond/<str:key>/", slo_views.slo_respond, name="slo_respond"),
    path("slo/frame/", slo_views.slo_frame, name="slo_frame"),
]
