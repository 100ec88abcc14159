"""Views for the account pages that allauth does not provide."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def home(request: HttpRequest) -> HttpResponse:
    """The site root: the account page when signed in, the sign-in page otherwise."""
    if request.user.is_authenticated:
        return redirect("/account/")
    return redirect("account_login")
