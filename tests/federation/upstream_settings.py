"""Settings of the upstream IdP the brokering tests start (a second instance of this project):
the project's own settings, its tables made from the models at once (no migration history to
replay: ~30 s less on this machine)."""

from idp.settings import *  # noqa: F403


class _NoMigrations(dict):
    """Every app, whatever its label, made from its models (Django's loader asks
    `label in MIGRATION_MODULES`, then takes the module; None: no migrations)."""

    def __contains__(self, item: object) -> bool:
        return True

    def __getitem__(self, item: str) -> None:
        return None


MIGRATION_MODULES = _NoMigrations()
