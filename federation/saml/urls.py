"""The SAML provider's URLs, under allauth's /accounts/ (its registry includes them), with
allauth's names (its SAML code reverses them): /accounts/saml/<identifier>/login/, acs/ (the
ACS URL to register at the provider), acs/finish/, sls/, metadata/ (our entity ID)."""

from django.urls import include, path

from federation.saml import views

urlpatterns = [
    path(
        "saml/<slug:organization_slug>/",
        include(
            [
                path("acs/", views.acs, name="saml_acs"),
                path("acs/finish/", views.finish_acs, name="saml_finish_acs"),
                path("sls/", views.sls, name="saml_sls"),
                path("metadata/", views.metadata, name="saml_metadata"),
                path("login/", views.login, name="saml_login"),
            ]
        ),
    )
]
