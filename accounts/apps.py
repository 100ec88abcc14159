"""App config for company accounts: the user store, login UI and audit log."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Company accounts"
