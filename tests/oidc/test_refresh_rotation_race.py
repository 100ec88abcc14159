"""Two refreshes with one token, truly concurrent, on PostgreSQL (RFC 9700 §4.14.2).

The one-statement rotation (oauth_clients/rotation.py) holds no lock between validation and the
write; it relies on PostgreSQL's READ COMMITTED rule that an UPDATE waiting on a row another
transaction changed re-checks its WHERE clause once that transaction commits. This drives two
database connections through exactly that interleaving and checks the loser wrote nothing.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors

from oauth_clients.models import AccessToken, IDToken, RefreshToken
from oauth_clients.tokens import token_checksum
from oauth_clients.validator import IdPOAuth2Validator

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's one-statement rotation"
    ),
    pytest.mark.django_db(transaction=True),
]


def _request(client) -> Request:
    request = Request("https://idp.example/o/token/")
    request.client = client
    request.grant_type = "refresh_token"
    request.scopes = ["openid"]
    return request


def _token(n: int) -> dict:
    return {"access_token": f"a{n}", "refresh_token": f"r{n}", "scope": "openid", "expires_in": 60}


@pytest.mark.spec("RFC 9700", "4.14.2")
def test_a_rotation_that_waited_on_a_concurrent_one_writes_nothing(web_client, issue_tokens):
    first = issue_tokens(web_client, scope="openid")
    validator = IdPOAuth2Validator()
    outcome: dict[str, object] = {}

    def loser() -> None:
        try:
            request = _request(web_client)
            # Validation reads the committed row: still live, so it passes.
            assert validator.validate_refresh_token(first["refresh_token"], web_client, request)
            outcome["validated"] = True
            validator.save_bearer_token(_token(2), request)
            outcome["result"] = "rotated"
        except errors.InvalidGrantError:
            outcome["result"] = "invalid_grant"
        finally:
            connections.close_all()

    before = (AccessToken.objects.count(), IDToken.objects.count())
    with transaction.atomic():
        request = _request(web_client)
        assert validator.validate_refresh_token(first["refresh_token"], web_client, request)
        validator.save_bearer_token(_token(1), request)  # the row is now locked until commit
        thread = threading.Thread(target=loser)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _waiting_on_a_lock():
            time.sleep(0.02)
        assert _waiting_on_a_lock(), "the second rotation should wait for the first"
        assert outcome == {"validated": True}
    thread.join(10)
    assert outcome["result"] == "invalid_grant"
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    # Only the winner's access token was added, in place of the first pair's (which the winner's
    # rotation deleted); no ID token for either (no `id_token` asked).
    assert (AccessToken.objects.count(), IDToken.objects.count()) == before
    assert list(AccessToken.objects.values_list("token_checksum", flat=True)) == [
        token_checksum("a1")
    ]


def _waiting_on_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        # Statistics views are a snapshot per transaction; this runs inside the winner's.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
