"""App configs: company accounts (the user store, login UI and audit log), and allauth's
usersessions with our sign-in receiver in place of allauth's (and of Django's `last_login`
one)."""

from allauth.usersessions import apps as usersessions_apps
from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Company accounts"

    def ready(self) -> None:
        # Django's auth signals are the one hook that sees *every* sign-in: allauth's flows and
        # plain `django.contrib.auth.login()` alike (the seed API must keep working). Receivers
        # only call services; no flow logic lives in them.
        from accounts import receivers  # noqa: F401


class UserSessionsConfig(usersessions_apps.UserSessionsConfig):
    """allauth.usersessions (same name and label), listed in INSTALLED_APPS in its place.

    allauth's `user_logged_in` receiver checks every stored session of the user before recording
    the new one (`UserSession.objects.purge_and_list`: two session-store reads and a user lookup
    per session), so each sign-in cost more the more sessions the user had. Our receiver
    (accounts.receivers) records the new session and purges only rows that can be stale
    (`services.record_user_session`). It is swapped here, in allauth's own `ready()`, because
    `accounts` is listed before allauth (its templates win) and so becomes ready first.
    """

    default = False  # accounts/apps.py holds two configs: "accounts" means AccountsConfig

    def ready(self) -> None:
        super().ready()
        from allauth.account.signals import user_logged_in
        from allauth.usersessions import signals

        if not user_logged_in.disconnect(receiver=signals.on_user_logged_in):
            raise ImproperlyConfigured(
                "allauth.usersessions no longer connects on_user_logged_in: "
                "re-check accounts.apps.UserSessionsConfig against allauth."
            )
        # Django's `update_last_login` (connected by django.contrib.auth's ready(), which runs
        # before this one) saves the user on every sign-in; `services.record_login` writes
        # `last_login` with the sign-in's audit row instead, in one statement.
        from django.contrib.auth.signals import user_logged_in as django_user_logged_in

        if not django_user_logged_in.disconnect(dispatch_uid="update_last_login"):
            raise ImproperlyConfigured(
                "django.contrib.auth no longer connects update_last_login: "
                "re-check accounts.apps.UserSessionsConfig against Django."
            )
