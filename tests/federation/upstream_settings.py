"""Settings of the upstream IdP the brokering tests start (a second instance of this project):
the project's own settings, its tables made from the models at once (no migration history to
replay: ~30 s less on this machine)."""

from idp.settings import *  # noqa: F403

MIGRATION_MODULES = dict.fromkeys(
    (
        "accounts",
        "oauth_clients",
        "idp",
        "auth",
        "contenttypes",
        "sessions",
        "account",
        "mfa",
        "usersessions",
        "socialaccount",
        "oauth2_provider",
        "django_tasks_database",
        "federation",
        "admin",
    )
)
