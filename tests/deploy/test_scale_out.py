"""Scale-out: two gunicorn instances over one PostgreSQL and one Redis.

Sign in on A, consent on B, exchange the code on A, refresh on B, userinfo on A; a login lock
earned through A holds on B; stopping A in the middle of a bounded load run on B loses no session
and no token, and the database is consistent afterwards. Runs in the Makefile's PostgreSQL phase
(`pytest -m scaleout`) and fails, never skips, when PostgreSQL or Redis does not answer.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from html import unescape
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import psycopg
import pytest
import redis
import requests

from tests.deploy.servers import (
    REDIS_HOST,
    REDIS_PORT,
    Server,
    collected_static,
    database_url,
    manage,
    migrated_database,
    production_env,
    redis_db,
    require_services,
)

pytestmark = [pytest.mark.scaleout]

# A Redis database of its own, so the shared Redis of other tests is left alone.
REDIS_DB = redis_db("scaleout")
PASSWORD = "scale-out " + secrets.token_urlsafe(12)
CLIENT_ID = "scale-app"
CLIENT_SECRET = "scale-secret-" + secrets.token_urlsafe(24)
REDIRECT_URI = "https://app.example.com/callback"
LOAD_WORKERS_ON_B = 3
LOAD_ITERATIONS = 30
SETUP_SCRIPT = f"""
from django.contrib.auth import get_user_model
from oauth_clients.models import Client
User = get_user_model()
for name in ("alice", "bob", *[f"load{{i}}" for i in range({LOAD_WORKERS_ON_B + 1})]):
    User.objects.create_user(name, f"{{name}}@example.com", {PASSWORD!r})
Client.objects.create(
    name="Scale App", client_id={CLIENT_ID!r}, client_secret={CLIENT_SECRET!r},
    client_type=Client.CLIENT_CONFIDENTIAL,
    authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
    grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
    redirect_uris={REDIRECT_URI!r}, algorithm=Client.RS256_ALGORITHM,
    allowed_scopes="openid profile email offline_access", skip_authorization=False,
)
"""


# --- a browser and an app, speaking HTTP to whichever instance they are told


def form_fields(html: str) -> dict[str, str]:
    return {
        unescape(name): unescape(value)
        for name, value in re.findall(
            r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html, flags=re.IGNORECASE
        )
    }


def form_with(html: str, marker: str) -> str:
    """The one <form> of the page that contains `marker` (the page also has the header's
    sign-out form and the language switcher)."""
    (form,) = [
        block
        for block in re.findall(r"<form\b.*?</form>", html, flags=re.IGNORECASE | re.DOTALL)
        if marker in block
    ]
    return form


def form_action(html: str, page_url: str) -> str:
    match = re.search(r'<form[^>]*method="post"[^>]*action="([^"]*)"', html, re.IGNORECASE)
    return urljoin(page_url, unescape(match.group(1)) if match and match.group(1) else page_url)


def sign_in(
    browser: requests.Session, base: str, username: str, password: str
) -> requests.Response:
    page = browser.get(f"{base}/accounts/login/", timeout=20)
    assert page.status_code == HTTPStatus.OK, page.status_code
    token = form_fields(page.text)["csrfmiddlewaretoken"]
    return browser.post(
        f"{base}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "login": username, "password": password},
        headers={"Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=20,
    )


def signed_in(browser: requests.Session, base: str) -> bool:
    response = browser.get(f"{base}/account/", allow_redirects=False, timeout=20)
    return response.status_code == HTTPStatus.OK


@dataclass
class Authorization:
    code: str
    verifier: str


def authorize(browser: requests.Session, base: str) -> Authorization:
    """Authorization request on `base`; answers the consent screen with Allow if shown."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state = secrets.token_urlsafe(12)
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access",
        "state": state,
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = browser.get(f"{base}/o/authorize/", params=params, allow_redirects=False, timeout=20)
    if response.status_code == HTTPStatus.OK:  # the consent screen
        consent = form_with(response.text, 'name="allow"')
        fields = form_fields(consent)
        response = browser.post(
            form_action(consent, response.url),
            data={**fields, "allow": "allow"},
            headers={"Referer": response.url},
            allow_redirects=False,
            timeout=20,
        )
    assert response.status_code == HTTPStatus.FOUND, (response.status_code, response.text[:500])
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return Authorization(code=query["code"][0], verifier=verifier)


def token_request(base: str, data: dict[str, str]) -> requests.Response:
    return requests.post(f"{base}/o/token/", data=data, auth=(CLIENT_ID, CLIENT_SECRET), timeout=20)


def exchange(base: str, authorization: Authorization) -> requests.Response:
    return token_request(
        base,
        {
            "grant_type": "authorization_code",
            "code": authorization.code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": authorization.verifier,
        },
    )


def refresh(base: str, refresh_token: str) -> requests.Response:
    return token_request(base, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def userinfo(base: str, access_token: str) -> requests.Response:
    return requests.get(
        f"{base}/o/userinfo/", headers={"Authorization": f"Bearer {access_token}"}, timeout=20
    )


# --- the cluster


@dataclass
class Cluster:
    a: Server
    b: Server
    db_name: str
    seen_secrets: list[str] = field(default_factory=list)

    def sql(self, query: str, *args: object) -> list[tuple]:
        with psycopg.connect(database_url(self.db_name)) as conn:
            return conn.execute(query, args).fetchall()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    require_services(redis=True)
    tmp: Path = tmp_path_factory.mktemp("scaleout")
    store = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    store.flushdb()
    with migrated_database("idp_e_scaleout") as name:
        env = production_env(
            tmp,
            DATABASE_URL=database_url(name),
            REDIS_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            IDP_LOCKOUT_THRESHOLD="3",
            IDP_STATIC_ROOT=collected_static(),
        )
        manage("shell", "-c", SETUP_SCRIPT, env=env)
        a = Server("A", env, tmp).start()
        b = Server("B", env, tmp).start()
        try:
            yield Cluster(a=a, b=b, db_name=name)
        finally:
            a.stop()
            b.stop()
            store.flushdb()
            store.close()


# --- the acceptance scenarios


def test_a_sign_in_travels_across_instances(cluster):
    a, b = cluster.a.url, cluster.b.url
    browser = requests.Session()
    response = sign_in(browser, a, "alice", PASSWORD)
    assert response.status_code == HTTPStatus.FOUND, response.text[:500]
    assert signed_in(browser, b), "the session made on A is not known to B"

    authorization = authorize(browser, b)  # consent on B
    tokens = exchange(a, authorization)  # code exchanged on A
    assert tokens.status_code == HTTPStatus.OK, tokens.text
    issued = tokens.json()
    assert {"access_token", "refresh_token", "id_token"} <= issued.keys()

    refreshed = refresh(b, issued["refresh_token"])  # refreshed on B
    assert refreshed.status_code == HTTPStatus.OK, refreshed.text
    info = userinfo(a, refreshed.json()["access_token"])  # userinfo on A
    assert info.status_code == HTTPStatus.OK, info.text
    assert info.json()["sub"]

    # Both instances sign with the same key: the ID token's kid is in either JWKS.
    header = issued["id_token"].split(".")[0]
    kid = __import__("json").loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))[
        "kid"
    ]
    for base in (a, b):
        keys = requests.get(f"{base}/.well-known/jwks.json", timeout=10).json()["keys"]
        assert kid in {key["kid"] for key in keys}

    # The code was consumed on A: replaying it on B fails cleanly.
    replay = exchange(b, authorization)
    assert replay.status_code == HTTPStatus.BAD_REQUEST
    assert replay.json()["error"] == "invalid_grant"
    cluster.seen_secrets += [
        authorization.code,
        issued["access_token"],
        issued["refresh_token"],
        issued["id_token"],
        refreshed.json()["access_token"],
        refreshed.json()["refresh_token"],
    ]


def test_a_login_lock_earned_on_a_holds_on_b(cluster):
    a, b = cluster.a.url, cluster.b.url
    # The right password works on B before the attack (positive path) …
    assert sign_in(requests.Session(), b, "bob", PASSWORD).status_code == HTTPStatus.FOUND
    for _ in range(3):
        response = sign_in(requests.Session(), a, "bob", "wrong password " + "x" * 8)
        assert response.status_code == HTTPStatus.OK  # the form again, with an error
    # … and is refused on B once A locked the account.
    attempt = sign_in(requests.Session(), b, "bob", PASSWORD)
    assert attempt.status_code in {HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS}
    assert attempt.status_code != HTTPStatus.FOUND
    (locked_until,) = cluster.sql("SELECT locked_until FROM accounts_user WHERE username = 'bob'")
    assert locked_until[0] is not None


@dataclass
class Chain:
    """One signed-in browser and one app's token chain, driven by one load worker."""

    name: str
    browser: requests.Session
    refresh_token: str
    access_token: str
    successes: int = 0
    successes_on: dict[str, int] = field(default_factory=dict)
    refreshes: int = 0
    clean_failures: int = 0
    problems: list[str] = field(default_factory=list)


def start_chain(cluster: Cluster, name: str, base: str) -> Chain:
    browser = requests.Session()
    assert sign_in(browser, base, name, PASSWORD).status_code == HTTPStatus.FOUND
    tokens = exchange(base, authorize(browser, base))
    assert tokens.status_code == HTTPStatus.OK, tokens.text
    body = tokens.json()
    return Chain(name, browser, body["refresh_token"], body["access_token"])


def run_chain(chain: Chain, bases: list[str], stop_a: threading.Event) -> None:
    """Bounded loop: session page, refresh, userinfo. Fails over from A to B once A is gone."""
    for _ in range(LOAD_ITERATIONS):
        base = bases[-1] if stop_a.is_set() else bases[0]
        try:
            page = chain.browser.get(f"{base}/account/", allow_redirects=False, timeout=20)
            if page.status_code != HTTPStatus.OK:
                chain.problems.append(f"{base} /account/ -> {page.status_code}")
                continue
            response = refresh(base, chain.refresh_token)
            if response.status_code != HTTPStatus.OK:
                chain.problems.append(f"{base} refresh -> {response.status_code} {response.text}")
                return
            body = response.json()
            chain.refresh_token, chain.access_token = body["refresh_token"], body["access_token"]
            chain.refreshes += 1
            info = userinfo(base, chain.access_token)
            if info.status_code != HTTPStatus.OK:
                chain.problems.append(f"{base} userinfo -> {info.status_code}")
                continue
            chain.successes += 1
            chain.successes_on[base] = chain.successes_on.get(base, 0) + 1
        except requests.ConnectionError:
            # A refused the connection (stopped): a clean failure; the next round goes to B.
            if base == bases[-1]:
                chain.problems.append(f"connection to {base} failed")
            chain.clean_failures += 1
            stop_a.wait(5)


def test_stopping_a_during_load_on_b_loses_no_session_and_no_token(cluster):
    a, b = cluster.a.url, cluster.b.url
    chains = [start_chain(cluster, f"load{i}", b) for i in range(LOAD_WORKERS_ON_B)]
    # One more chain that lives on A until A is stopped (what the balancer would do).
    on_a = start_chain(cluster, f"load{LOAD_WORKERS_ON_B}", a)
    a_gone = threading.Event()
    threads = [
        threading.Thread(target=run_chain, args=(chain, [b], threading.Event())) for chain in chains
    ]
    threads.append(threading.Thread(target=run_chain, args=(on_a, [a, b], a_gone)))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    # Stop A once the chain living there has made a few rounds on it: by the count, not after a
    # fixed pause (on a fast machine all 30 rounds once fitted in 1.5 s, and A stopped too late).
    deadline = time.monotonic() + 60
    while on_a.successes_on.get(a, 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    done_when_a_stopped = sum(chain.successes for chain in chains)
    stop_started = time.monotonic()
    exit_code = cluster.a.stop()  # SIGTERM in the middle of the run
    stop_seconds = time.monotonic() - stop_started
    a_gone.set()
    for thread in threads:
        thread.join(timeout=240)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "load run did not finish"
    assert exit_code == 0, f"A did not stop gracefully:\n{cluster.a.logs()[-2000:]}"

    # Every request on B succeeded; A's requests succeeded or were refused cleanly.
    for chain in [*chains, on_a]:
        assert chain.problems == [], (chain.name, chain.problems)
        assert chain.successes + chain.clean_failures == LOAD_ITERATIONS
    assert all(chain.successes == LOAD_ITERATIONS for chain in chains)
    # A really stopped in the middle: B's load was still running, and the chain that lived on
    # A succeeded there before and on B after.
    assert 0 < done_when_a_stopped < LOAD_WORKERS_ON_B * LOAD_ITERATIONS
    assert on_a.successes_on.get(a, 0) > 0
    assert on_a.successes_on.get(b, 0) > 0
    total_refreshes = sum(chain.refreshes for chain in [*chains, on_a])
    print(
        f"{total_refreshes} refreshes in {elapsed:.1f}s; A stopped gracefully in "
        f"{stop_seconds:.1f}s after {done_when_a_stopped} rounds on B"
    )

    # No session and no token was lost: every browser is still signed in, every chain's last
    # refresh token still works on B.
    for chain in [*chains, on_a]:
        assert signed_in(chain.browser, b), chain.name
        assert userinfo(b, chain.access_token).status_code == HTTPStatus.OK, chain.name
        response = refresh(b, chain.refresh_token)
        assert response.status_code == HTTPStatus.OK, (chain.name, response.text)
        chain.refresh_token = response.json()["refresh_token"]
        chain.refreshes += 1

    # The database is consistent: per user, one live refresh token, with its access token, and
    # exactly one refresh-token row per issue plus one per rotation.
    for chain in [*chains, on_a]:
        live, total = cluster.sql(
            """
            SELECT count(*) FILTER (WHERE rt.revoked IS NULL), count(*)
            FROM oauth_clients_refreshtoken rt JOIN accounts_user u ON u.id = rt.user_id
            WHERE u.username = %s
            """,
            chain.name,
        )[0]
        assert live == 1, (chain.name, live)
        assert total == 1 + chain.refreshes, (chain.name, total, chain.refreshes)
    orphans = cluster.sql(
        """
        SELECT count(*) FROM oauth_clients_refreshtoken rt
        LEFT JOIN oauth_clients_accesstoken at ON at.id = rt.access_token_id
        WHERE rt.revoked IS NULL AND at.id IS NULL
        """
    )[0][0]
    assert orphans == 0
    cluster.a.start()  # back for any scenario that runs after this one


def test_the_instances_logged_no_secret(cluster):
    logs = cluster.a.logs() + cluster.b.logs()
    assert '"logger": "idp.request"' in logs
    assert "Traceback" not in logs
    for value in [PASSWORD, CLIENT_SECRET, *cluster.seen_secrets]:
        assert value not in logs
