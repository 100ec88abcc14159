"""`manage.py purge_tokens`: expired rows go in small batches; what reuse detection needs stays."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from oauth_clients.models import AccessToken, Grant, IDToken, RefreshToken


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_tokens", "--pause", "0", *args, stdout=out)
    return out.getvalue()


def long_ago() -> timezone.datetime:
    return timezone.now() - timedelta(days=2)


def test_expired_tokens_go_and_live_ones_stay(web_client, issue_tokens, run_code_flow):
    live = issue_tokens(web_client)
    dead = issue_tokens(web_client)
    dead_rt = RefreshToken.objects.exclude(pk=RefreshToken.objects.order_by("pk").first().pk).get()
    RefreshToken.objects.filter(pk=dead_rt.pk).update(expires=long_ago())
    AccessToken.objects.filter(pk=dead_rt.access_token_id).update(expires=long_ago())
    IDToken.objects.filter(access_token__pk=dead_rt.access_token_id).update(expires=long_ago())
    run_code_flow(web_client)  # an unexchanged code
    Grant.objects.filter(consumed_at__isnull=True).update(expires=long_ago())

    report = purge()

    assert "refresh_tokens: 1" in report
    assert "access_tokens: 1" in report
    assert "id_tokens: 1" in report
    assert "codes: 1" in report
    assert RefreshToken.objects.count() == 1
    assert AccessToken.objects.count() == 1
    assert live["refresh_token"] != dead["refresh_token"]


def test_an_expired_access_token_paired_with_a_live_refresh_token_stays(web_client, issue_tokens):
    issue_tokens(web_client)
    AccessToken.objects.update(expires=long_ago())
    purge()
    assert AccessToken.objects.count() == 1  # the next refresh retires it
    assert RefreshToken.objects.count() == 1


def test_rotated_refresh_tokens_stay_until_their_family_expires(
    client, web_client, issue_tokens, token_endpoint
):
    from tests.oidc.conftest import basic_auth, post_form

    first = issue_tokens(web_client)
    post_form(
        client,
        token_endpoint,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    rotated = RefreshToken.objects.get(revoked__isnull=False)
    RefreshToken.objects.filter(pk=rotated.pk).update(expires=long_ago())
    purge()
    assert RefreshToken.objects.filter(pk=rotated.pk).exists()  # replay still detected
    RefreshToken.objects.update(family_expires=long_ago())
    purge()
    assert not RefreshToken.objects.exists()


def test_batches_delete_everything_and_respect_the_margin(web_client, user):
    now = timezone.now()
    for i in range(5):
        AccessToken.objects.create(
            user=user,
            application=web_client,
            token="",
            token_checksum=f"{i:064d}",
            expires=long_ago(),
        )
    AccessToken.objects.create(
        user=user,
        application=web_client,
        token="",
        token_checksum="f" * 64,
        expires=now - timedelta(minutes=5),  # expired, but within the default hour's margin
    )
    assert "access_tokens: 5" in purge("--batch-size", "2")
    assert AccessToken.objects.count() == 1
    assert "access_tokens: 1" in purge("--margin", "0")


def test_batches_walk_past_rows_that_must_stay(web_client, user):
    """Expired access tokens still paired with a live refresh token come first in the expiry
    index: the purge steps over them instead of reading them again and again."""
    from uuid import uuid4

    future = timezone.now() + timedelta(days=1)
    for i in range(6):
        token = AccessToken.objects.create(
            user=user,
            application=web_client,
            token="",
            token_checksum=f"{i:064d}",
            expires=long_ago() - timedelta(minutes=10 - i),
        )
        if i < 3:  # the oldest three are paired with live refresh tokens
            RefreshToken.objects.create(
                user=user,
                application=web_client,
                access_token=token,
                token="",
                token_checksum=f"r{i:063d}",
                token_family=uuid4(),
                expires=future,
                family_expires=future,
            )
    assert "access_tokens: 3" in purge("--batch-size", "2")
    assert AccessToken.objects.count() == 3
    assert AccessToken.objects.filter(refresh_token__isnull=True).count() == 0
