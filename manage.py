#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands whose stdout is the log stream, as gunicorn's is: the servers. Every other command's
# stdout is its answer (`groups ... --json`, `clients export`), so its log lines, the audit
# events it writes among them, go to stderr (IDP_LOG_STREAM in idp/settings.py).
_SERVERS = {"runserver", "db_worker"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
    if len(sys.argv) > 1 and sys.argv[1] not in _SERVERS:
        os.environ.setdefault("IDP_LOG_STREAM", "stderr")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
