"""Token rows written by `oauth_clients.writes.insert` (one INSERT built once per model) are the
rows `Model.save()` would write, and skipping `save()`'s signals loses nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest
from django.utils import timezone

from oauth_clients.models import AccessToken, Grant, IDToken, RefreshToken
from oauth_clients.writes import insert, listened_to


@pytest.mark.parametrize("model", [AccessToken, RefreshToken, IDToken, Grant])
def test_nothing_listens_to_token_save_signals(model):
    """`insert` sends no pre_save/post_save: a receiver added later must be noticed here."""
    assert not listened_to(model)


def test_insert_writes_the_row_save_would(web_client, user):
    expires = timezone.now() + dt.timedelta(minutes=10)
    id_token = insert(
        IDToken(user=user, application=web_client, jti=uuid.uuid4(), expires=expires, sid="s1")
    )
    made = {}
    for how in ("save", "insert"):
        token = AccessToken(
            user=user,
            application=web_client,
            expires=expires,
            scope="openid email",
            resource=["https://api.example.com"],
            sid="s1",
            id_token=id_token if how == "insert" else None,
        )
        token._raw_token = f"raw-{how}"  # DOT's hashed-at-rest path (token column blank)
        if how == "save":
            token.save()
        else:
            assert insert(token) is token
        assert token.pk is not None
        assert not token._state.adding
        made[how] = AccessToken.objects.get(pk=token.pk)
    saved, inserted = made["save"], made["insert"]
    for name in ("user_id", "application_id", "expires", "scope", "resource", "sid", "token"):
        assert getattr(inserted, name) == getattr(saved, name), name
    assert inserted.token == ""
    assert inserted.token_checksum == hashlib.sha256(b"raw-insert").hexdigest()
    assert inserted.id_token_id == id_token.pk
    assert inserted.created is not None
    assert inserted.updated is not None
    assert IDToken.objects.get(pk=id_token.pk).sid == "s1"
