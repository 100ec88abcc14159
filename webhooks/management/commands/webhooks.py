"""`manage.py webhooks …`: webhook subscribers from the command line.

    webhooks create --url URL --event TYPE [--event TYPE ...] [--name NAME] [--allow-private]
                    [--json]
    webhooks list [--json]
    webhooks disable | enable ID
    webhooks events                      # the event types there are

`create` prints the subscriber's signing secret once (`whsec_...`); it is stored encrypted and
never shown again. Every change goes through webhooks/services.py (audited, as the operator).
A bad URL (not https, a private address without --allow-private) or an unknown event type exits
non-zero with the reason.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks import services
from webhooks.events import PUBLIC_TYPES
from webhooks.models import Subscriber


class Command(BaseCommand):
    help = "Create, list, disable and enable webhook subscribers."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = sub.add_parser("create", help="Add a subscriber; prints its secret once.")
        create.add_argument("--url", required=True)
        create.add_argument(
            "--event", action="append", required=True, dest="events", metavar="TYPE"
        )
        create.add_argument("--name", default="")
        create.add_argument(
            "--allow-private",
            action="store_true",
            help="The receiver may be on a private, loopback or link-local address.",
        )
        create.add_argument("--json", action="store_true")
        listing = sub.add_parser("list", help="The subscribers.")
        listing.add_argument("--json", action="store_true")
        for name in ("disable", "enable"):
            action = sub.add_parser(name, help=f"{name.capitalize()} a subscriber.")
            action.add_argument("id", type=int)
        sub.add_parser("events", help="The event types a subscriber can ask for.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except ValidationError as error:
            raise CommandError(f"Refused: {' '.join(error.messages)}") from error

    def do_create(self, options: dict[str, Any]) -> None:
        subscriber, secret = services.create_subscriber(
            name=options["name"],
            url=options["url"],
            event_types=options["events"],
            allow_private_network=options["allow_private"],
            actor=None,
        )
        if options["json"]:
            self.stdout.write(json.dumps({**_describe(subscriber), "secret": secret}, indent=2))
            return
        self.stdout.write(f"Subscriber {subscriber.pk} ({subscriber.name}) created.")
        self.stdout.write(f"Signing secret (shown once, keep it now): {secret}")

    def do_list(self, options: dict[str, Any]) -> None:
        subscribers = [_describe(subscriber) for subscriber in Subscriber.objects.all()]
        if options["json"]:
            self.stdout.write(json.dumps(subscribers, indent=2))
            return
        for item in subscribers:
            state = "active" if item["is_active"] else "disabled"
            self.stdout.write(
                f"{item['id']}  {item['name']}  {item['url']}  {state}  "
                f"{', '.join(item['event_types'])}"
            )

    def _toggle(self, options: dict[str, Any], *, is_active: bool) -> None:
        subscriber = Subscriber.objects.filter(pk=options["id"]).first()
        if subscriber is None:
            raise CommandError(f"No subscriber {options['id']}.")
        services.update_subscriber(subscriber=subscriber, is_active=is_active, actor=None)
        self.stdout.write(f"Subscriber {subscriber.pk} is {'active' if is_active else 'disabled'}.")

    def do_disable(self, options: dict[str, Any]) -> None:
        self._toggle(options, is_active=False)

    def do_enable(self, options: dict[str, Any]) -> None:
        self._toggle(options, is_active=True)

    def do_events(self, options: dict[str, Any]) -> None:
        for name in PUBLIC_TYPES:
            self.stdout.write(name)


def _describe(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "id": subscriber.pk,
        "name": subscriber.name,
        "url": subscriber.url,
        "event_types": subscriber.event_types,
        "allow_private_network": subscriber.allow_private_network,
        "is_active": subscriber.is_active,
    }
