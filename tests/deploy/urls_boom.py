"""A URL map with one view that raises, for the error metrics and logs tests."""

from django.urls import path

from idp.urls import urlpatterns as idp_urlpatterns


def boom(request):
    raise ValueError("kaboom")


urlpatterns = [*idp_urlpatterns, path("boom", boom, name="boom")]
