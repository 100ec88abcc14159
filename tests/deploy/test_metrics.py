"""/metrics: Prometheus text for scrapers with the token or from the allowed networks, 404 else."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client
from prometheus_client import REGISTRY

from accounts.audit import record_event
from accounts.models import AuditEvent
from tests.oidc.conftest import basic_auth, post_form
from tests.oidc.conftest import exchange_code as exchange_code
from tests.oidc.conftest import issue_tokens as issue_tokens
from tests.oidc.conftest import machine_client as machine_client
from tests.oidc.conftest import run_code_flow as run_code_flow
from tests.oidc.conftest import token_endpoint as token_endpoint
from tests.oidc.conftest import web_client as web_client

METRICS_TOKEN = "metrics-token-" + "m" * 40
TOKEN_URL = "/o/token/"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_settings(settings):
    settings.IDP_METRICS_TOKEN = METRICS_TOKEN
    settings.IDP_METRICS_ALLOWED_CIDRS = ["10.0.0.0/8"]
    return settings


@pytest.mark.django_db
def test_metrics_answer_the_bearer_token(metrics_settings):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for family in (
        "idp_http_request_duration_seconds",
        "idp_http_requests_total",
        "idp_logins_total",
        "idp_active_sessions",
    ):
        assert family in body


@pytest.mark.django_db
def test_metrics_answer_an_allowed_network_on_the_pod_ip(metrics_settings):
    response = Client(REMOTE_ADDR="10.1.2.3", HTTP_HOST="10.42.0.5:8000").get("/metrics")
    assert response.status_code == HTTPStatus.OK


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong-token"},
        {"HTTP_AUTHORIZATION": f"Basic {METRICS_TOKEN}"},
        {"HTTP_AUTHORIZATION": "Bearer "},
        # Without a trusted proxy a forwarded address means nothing.
        {"HTTP_X_FORWARDED_FOR": "10.1.2.3"},
    ],
)
def test_metrics_are_hidden_from_everyone_else(metrics_settings, headers):
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").status_code == (
        HTTPStatus.OK
    )
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics", **headers)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert b"idp_" not in response.content


@pytest.mark.django_db
def test_metrics_relayed_by_the_ingress_see_the_real_client(metrics_settings):
    metrics_settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    # The ingress pod (10.x) relays a public client: its own address must not open /metrics.
    relayed = Client(REMOTE_ADDR="10.2.0.9", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert relayed.get("/metrics").status_code == HTTPStatus.NOT_FOUND
    scraper = Client(REMOTE_ADDR="10.2.0.9")
    assert scraper.get("/metrics").status_code == HTTPStatus.OK


@pytest.mark.django_db
def test_metrics_without_token_or_networks_configured_are_404(settings):
    settings.IDP_METRICS_TOKEN = ""
    settings.IDP_METRICS_ALLOWED_CIDRS = []
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404


@pytest.mark.django_db
def test_request_latency_is_labelled_by_url_name_not_path(metrics_settings):
    before = sample("idp_http_request_duration_seconds_count", view="account_login", method="GET")
    before_404 = sample("idp_http_requests_total", view="<unmatched>", method="GET", status="404")
    Client().get("/accounts/login/?next=/secret-looking-path")
    Client().get("/no/such/page/abc123")
    after = sample("idp_http_request_duration_seconds_count", view="account_login", method="GET")
    assert after == before + 1
    assert (
        sample("idp_http_requests_total", view="<unmatched>", method="GET", status="404")
        == before_404 + 1
    )
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").content
    assert b"abc123" not in body
    assert b"/accounts/login/" not in body


@pytest.mark.django_db
def test_unknown_http_methods_cannot_mint_label_values(metrics_settings):
    Client().generic("BREW", "/accounts/login/")
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").content
    assert b'method="BREW"' not in body
    assert sample("idp_http_requests_total", view="account_login", method="OTHER", status="405")


@pytest.mark.django_db
def test_unhandled_exceptions_are_counted(metrics_settings):
    metrics_settings.ROOT_URLCONF = "tests.deploy.urls_boom"
    before = sample("idp_http_exceptions_total", view="boom", exception="ValueError")
    before_500 = sample("idp_http_requests_total", view="boom", method="GET", status="500")
    response = Client(raise_request_exception=False).get("/boom")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert sample("idp_http_exceptions_total", view="boom", exception="ValueError") == before + 1
    assert (
        sample("idp_http_requests_total", view="boom", method="GET", status="500") == before_500 + 1
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event_type", "result"),
    [
        (AuditEvent.Type.LOGIN_SUCCEEDED, "success"),
        (AuditEvent.Type.LOGIN_FAILED, "failure"),
        (AuditEvent.Type.ACCOUNT_LOCKED, "locked"),
    ],
)
def test_logins_are_counted_from_the_audit_service(event_type, result, user):
    before = sample("idp_logins_total", result=result)
    record_event(type=event_type, subject=user)
    assert sample("idp_logins_total", result=result) == before + 1
    assert sample("idp_audit_events_total", type=str(event_type)) >= 1


def token_request(client, oauth_client, data: dict[str, str], *, secret: str | None = None):
    """POST `data` to the token endpoint as `oauth_client` (HTTP Basic; its own secret unless
    `secret` is given)."""
    secret = oauth_client.test_secret if secret is None else secret
    auth = basic_auth(oauth_client.client_id, secret)
    return post_form(client, TOKEN_URL, data, HTTP_AUTHORIZATION=auth)


@pytest.mark.django_db
def test_tokens_issued_are_counted_per_grant_type_at_the_token_endpoint(
    client, web_client, machine_client, issue_tokens
):
    grants = ("authorization_code", "refresh_token", "client_credentials")
    before = {grant: sample("idp_tokens_issued_total", grant_type=grant) for grant in grants}
    tokens = issue_tokens(web_client, scope="openid offline_access")
    refreshed = token_request(
        client,
        web_client,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
    machine = token_request(client, machine_client, {"grant_type": "client_credentials"})
    assert machine.status_code == HTTPStatus.OK, machine.content
    # Each grant type once, client credentials included (it writes no audit row). The code
    # exchange's audit row says grant="authorization_code"; the counter used to read
    # "grant_type" from it and so counted every real exchange as "unknown".
    for grant in grants:
        assert sample("idp_tokens_issued_total", grant_type=grant) == before[grant] + 1, grant


@pytest.mark.django_db
def test_refused_grants_are_not_counted_and_mint_no_labels(client, machine_client):
    ok = token_request(client, machine_client, {"grant_type": "client_credentials"})
    assert ok.status_code == HTTPStatus.OK
    before = sample("idp_tokens_issued_total", grant_type="client_credentials")
    wrong_secret = token_request(
        client, machine_client, {"grant_type": "client_credentials"}, secret="not-the-secret"
    )
    assert wrong_secret.status_code == HTTPStatus.UNAUTHORIZED
    made_up = token_request(client, machine_client, {"grant_type": "x-minted-label"})
    assert made_up.status_code == HTTPStatus.BAD_REQUEST
    assert made_up.json()["error"] == "unsupported_grant_type"
    assert sample("idp_tokens_issued_total", grant_type="client_credentials") == before
    labels = {
        s.labels["grant_type"]
        for metric in REGISTRY.collect()
        if metric.name == "idp_tokens_issued"
        for s in metric.samples
    }
    assert "x-minted-label" not in labels


@pytest.mark.django_db
def test_active_sessions_count_signed_in_sessions(metrics_settings, user, password):
    def active() -> float:
        body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").content
        line = next(
            line for line in body.decode().splitlines() if line.startswith("idp_active_sessions ")
        )
        return float(line.split()[1])

    assert active() == 0
    browser = Client()
    browser.force_login(user)
    browser.get("/accounts/email/")  # usersessions records the session on its next request
    assert UserSession.objects.count() == 1
    assert active() == 1
