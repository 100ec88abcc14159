"""The project's URLs and error handlers plus one view that fails (to see the 500 page)."""

from django.urls import path

from idp.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401 (Django reads the handlers from the root URLconf)


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [*urlpatterns, path("boom/", boom)]
