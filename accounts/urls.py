"""URLs of the account pages we add next to allauth's (/accounts/ belongs to allauth)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.overview, name="account_overview"),
    path(
        "password-reset-required/",
        views.password_reset_required,
        name="account_password_reset_required",
    ),
]
