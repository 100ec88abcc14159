"""The IdP's URLs plus mozilla-django-oidc's (the guide's urls.py line), for one test process
that plays both the IdP and the app."""

from django.urls import include, path

from idp.urls import urlpatterns as idp_urlpatterns

urlpatterns = [*idp_urlpatterns, path("oidc/", include("mozilla_django_oidc.urls"))]
