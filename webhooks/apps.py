"""App config: events out to other systems by webhook (Standard Webhooks)."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # accounts.audit sends `event_published` after every audit row; the receiver queues
        # the deliveries of the subscribers that asked for the event's type (webhooks/queue.py).
        from accounts.audit import event_published
        from webhooks.queue import queue_deliveries

        event_published.connect(queue_deliveries, dispatch_uid="webhooks.queue_deliveries")
