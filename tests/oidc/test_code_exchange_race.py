"""Two exchanges of one code, truly concurrent, on PostgreSQL (RFC 6749 §4.1.2).

The one-statement exchange (oauth_clients/rotation.py: `exchange`) reads the code without a lock
and relies on PostgreSQL's READ COMMITTED rule that an UPDATE waiting on a row another
transaction changed re-checks its WHERE clause once that transaction commits. This drives two
database connections through exactly that interleaving: the loser writes nothing, is refused,
and — the code having been used twice — what the winner obtained with it is revoked, as when
a replay arrives after the exchange.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749 import errors

from accounts.models import AuditEvent
from oauth_clients.models import AccessToken, Grant, IDToken, RefreshToken
from oauth_clients.tokens import token_checksum
from oauth_clients.validator import IdPOAuth2Validator

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's one-statement exchange"
    ),
    pytest.mark.django_db(transaction=True),
]


def _request(client) -> Request:
    request = Request("https://idp.example/o/token/")
    request.client = client
    request.client_id = client.client_id
    request.grant_type = "authorization_code"
    return request


def _token(n: int) -> dict:
    return {"access_token": f"a{n}", "refresh_token": f"r{n}", "scope": "openid", "expires_in": 60}


def _exchange(validator: IdPOAuth2Validator, client, code: str, request: Request, n: int) -> None:
    """What oauthlib's code grant calls after validation, in its order."""
    validator.save_bearer_token(_token(n), request)
    validator.invalidate_authorization_code(client.client_id, code, request)


def _waiting_on_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        # Statistics views are a snapshot per transaction; this runs inside the winner's.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_one_exchange_writes_its_rows_and_the_audit_row(web_client, run_code_flow):
    """The positive path the race below departs from: one statement, every row."""
    flow = run_code_flow(web_client, scope="openid")
    validator = IdPOAuth2Validator()
    request = _request(web_client)
    assert validator.validate_code(web_client.client_id, flow.code, web_client, request)
    _exchange(validator, web_client, flow.code, request, 1)

    assert Grant.objects.get().consumed_at is not None
    access = AccessToken.objects.get(token_checksum=token_checksum("a1"))
    assert access.user == request.user
    assert access.code_checksum == Grant.objects.get().code
    assert RefreshToken.objects.get(token_checksum=token_checksum("r1")).access_token == access
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKENS_ISSUED)
    assert (event.client, event.extra["grant"]) == (web_client, "authorization_code")


@pytest.mark.spec("RFC 6749", "4.1.2")
def test_an_exchange_that_waited_on_a_concurrent_one_writes_nothing(web_client, run_code_flow):
    flow = run_code_flow(web_client, scope="openid")
    validator = IdPOAuth2Validator()
    outcome: dict[str, object] = {}

    def loser() -> None:
        try:
            request = _request(web_client)
            # Validation reads the committed row: not consumed yet, so it passes.
            assert validator.validate_code(web_client.client_id, flow.code, web_client, request)
            outcome["validated"] = True
            _exchange(validator, web_client, flow.code, request, 2)
            outcome["result"] = "exchanged"
        except errors.InvalidGrantError:
            outcome["result"] = "invalid_grant"
        finally:
            connections.close_all()

    with transaction.atomic():
        request = _request(web_client)
        assert validator.validate_code(web_client.client_id, flow.code, web_client, request)
        _exchange(validator, web_client, flow.code, request, 1)  # the code row locked till commit
        thread = threading.Thread(target=loser)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _waiting_on_a_lock():
            time.sleep(0.02)
        assert _waiting_on_a_lock(), "the second exchange should wait for the first"
        assert outcome == {"validated": True}
        # The winner's rows exist inside its transaction.
        assert AccessToken.objects.filter(token_checksum=token_checksum("a1")).exists()
    thread.join(10)
    assert outcome["result"] == "invalid_grant"
    # The loser wrote nothing: no token of its own, one "tokens issued" row (the winner's).
    assert not AccessToken.objects.filter(token_checksum=token_checksum("a2")).exists()
    assert not RefreshToken.objects.filter(token_checksum=token_checksum("r2")).exists()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKENS_ISSUED).count() == 1
    assert not IDToken.objects.exists()  # no `id_token` asked of either
    # The code was used twice: what it issued is revoked (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REPLAY).count() == 1
