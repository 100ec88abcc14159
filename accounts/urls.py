"""URLs of the account pages we add next to allauth's (/accounts/ belongs to allauth)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.overview, name="account_overview"),
    path("profile/", views.profile, name="account_profile"),
    path("apps/", views.connected_apps, name="account_connected_apps"),
    path(
        "apps/<int:client_pk>/remove/",
        views.remove_connected_app,
        name="account_remove_connected_app",
    ),
    path("activity/", views.activity, name="account_activity"),
    path("sessions/<int:session_pk>/end/", views.end_session, name="account_end_session"),
    path("two-step-required/", views.mfa_required, name="account_mfa_required"),
    path(
        "password-reset-required/",
        views.password_reset_required,
        name="account_password_reset_required",
    ),
]
