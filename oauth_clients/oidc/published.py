"""The public documents every client fetches (discovery, JWKS), encoded once per process.

Both are functions of the issuer, the URL configuration and the published keys
(`key_store.published_pems`: from settings, or the database keys, which every process reads
again within seconds of a rotation, oauth_clients/key_store.py). So the JSON body is built and
encoded once per process and key set, under a key that changes with the issuer and the key
set's fingerprint (a rotation makes a new body, no restart), and served from memory: no cache
round trip (Redis) and no JSON encoding per request. Profiles of discovery and JWKS under load
showed those as most of the view's own time (docs/performance.md). Tests that change settings
get fresh documents: the memo is dropped on Django's `setting_changed` signal.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from oauth_clients.key_store import published_pems
from oauth_clients.keys import keys_fingerprint

_memo: dict[str, bytes] = {}
_lock = threading.Lock()


def documents_key() -> str:
    """Changes with the issuer and with the published key set."""
    issuer_tag = hashlib.sha256(settings.IDP_ISSUER.encode()).hexdigest()[:16]
    return f"{issuer_tag}:{keys_fingerprint(published_pems())}"


def json_body(name: str, build: Callable[[], Any]) -> bytes:
    """`build()` encoded as JSON, once per process and `documents_key()`."""
    key = f"{name}:{documents_key()}"
    body = _memo.get(key)
    if body is None:
        body = json.dumps(build(), separators=(",", ":")).encode()
        with _lock:
            _memo[key] = body
    return body


def forget() -> None:
    """Drop every encoded document (the next request builds them again)."""
    with _lock:
        _memo.clear()


@receiver(setting_changed)
def _forget_on_setting_change(**kwargs: Any) -> None:
    forget()
