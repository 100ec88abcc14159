"""App config for company accounts: the user store, login UI and audit log."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Company accounts"

    def ready(self) -> None:
        # Django's auth signals are the one hook that sees *every* sign-in: allauth's flows and
        # plain `django.contrib.auth.login()` alike (the seed API must keep working). Receivers
        # only call services; no flow logic lives in them.
        from accounts import receivers  # noqa: F401
