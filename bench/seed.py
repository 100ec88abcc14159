"""Bench data: users, clients, pre-minted token pools and bulk filler rows (run by bench/run.py).

Runs as a Django script against the bench's own database (`DATABASE_URL` in the environment):

    python bench/seed.py setup --users 200 --out DIR      users, OIDC and SAML apps, one token
    python bench/seed.py refresh-pool --count N --out F  N live refresh tokens, one body per line
    python bench/seed.py code-pool --count N --out F     N authorization codes, one body per line
    python bench/seed.py fill --rows N [--expired]       N filler access tokens (+ refresh tokens)
    python bench/seed.py explain --out F                 EXPLAIN of every hot query (PostgreSQL)

Pools are made with bulk inserts of exactly the rows the grant flow would have written (hashed
codes and token checksums, never clear values), so each request of the load generator finds
a fresh, valid credential. Clear values go to the pool files only (a throwaway directory).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")

import django  # noqa: E402 (the path and settings module come first)

django.setup()

from allauth.account.models import EmailAddress  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from oauth_clients.models import AccessToken, Client, Grant, IDToken, RefreshToken  # noqa: E402

try:
    from oauth_clients.oidc.tokens import hash_code
except ImportError:  # a tree before the protocol engine's package (an A/B's "before")
    from oauth_clients.tokens import hash_code  # type: ignore[import-not-found,no-redef]

PASSWORD = "bench-password-correct-horse"  # noqa: S105 (throwaway bench users)
REDIRECT_URI = "https://app.bench.example/callback"
# One PKCE pair for every pre-minted code (RFC 7636 §4.1: the verifier is 43-128 characters).
VERIFIER = "bench-verifier-" + "v" * 40
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
)
BATCH = 5000
# The bench SAML app (SP-initiated sign-in, bench/wrk/saml_signin.lua): a registered service
# provider that sends unsigned AuthnRequests and takes the Response at one HTTP-POST ACS.
SAML_CLIENT_ID = "bench-saml"
SAML_ENTITY_ID = "https://sp.bench.example/saml/metadata"
SAML_ACS_URL = "https://sp.bench.example/saml/acs"


# What the grants themselves write, which the load before each pool has grown: the ID-token
# table most of all, which no pool fills. Its statistics decide a query no code of ours runs:
# PostgreSQL's foreign-key check of each new access token's `id_token_id`, planned once per
# connection and planned again only when the table is analysed. Planned on an empty table, it
# read the whole table on every refresh and code exchange.
GRANT_WRITES = (AccessToken, RefreshToken, IDToken)


def analyze(*models) -> None:
    """Planner statistics for what was just written (all tables when no model is named), as
    autovacuum gathers them within a minute on a production server. This machine's PostgreSQL
    runs with autovacuum off (/etc/postgresql/*/main/conf.d/90-ci.conf), so without this every
    bench query was planned on a never-analysed database."""
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if not models:
            cursor.execute("ANALYZE")
        for model in models:
            cursor.execute(f"ANALYZE {quote(model._meta.db_table)}")


def checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def make_client(client_id: str, **fields) -> tuple[Client, str]:
    secret = secrets.token_urlsafe(32)
    values = {
        "name": client_id,
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "authorization_grant_type": Client.GRANT_AUTHORIZATION_CODE,
        "algorithm": Client.RS256_ALGORITHM,
        "redirect_uris": REDIRECT_URI,
        "allowed_scopes": "openid profile email offline_access",
        "is_trusted": True,
    }
    values.update(fields)
    client = Client.objects.create(client_id=client_id, client_secret=secret, **values)
    return client, secret


def setup(args: argparse.Namespace) -> None:
    user_model = get_user_model()
    password_hash = make_password(PASSWORD)  # one Argon2id hash, shared by every bench user
    users = [
        user_model(
            username=f"user{i}",
            email=f"user{i}@bench.example",
            first_name="Bench",
            last_name=f"User {i}",
            password=password_hash,
        )
        for i in range(args.users)
    ]
    user_model.objects.bulk_create(users, batch_size=BATCH)
    users = list(user_model.objects.filter(username__startswith="user").order_by("pk"))
    EmailAddress.objects.bulk_create(
        [EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in users]
    )
    grants = [Client.GRANT_AUTHORIZATION_CODE, "refresh_token"]
    machine, machine_secret = make_client(
        "bench-machine",
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
        kind=Client.Kind.SERVICE,
    )
    web, web_secret = make_client("bench-web", grant_types=grants)
    web_es, web_es_secret = make_client(
        "bench-web-es256", grant_types=grants, algorithm=getattr(Client, "ES256_ALGORITHM", "RS256")
    )
    resource, resource_secret = make_client(
        "bench-api",
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
        is_resource_server=True,
        kind=Client.Kind.SERVICE,
    )
    signin, signin_secret = make_client("bench-signin", grant_types=grants)
    jwt_api = jwt_api_client()
    # One long-lived access token with openid for userinfo and introspection.
    access = secrets.token_urlsafe(32)
    AccessToken.objects.create(
        user=users[0],
        application=web,
        token="",
        token_checksum=checksum(access),
        expires=timezone.now() + timedelta(days=1),
        scope="openid profile email",
    )
    device = device_app()
    saml = saml_app()
    fixtures = {
        "password": PASSWORD,
        "users": len(users),
        "redirect_uri": REDIRECT_URI,
        "verifier": VERIFIER,
        "challenge": CHALLENGE,
        "access_token": access,
        "auth": {
            "machine": basic(machine.client_id, machine_secret),
            "web": basic(web.client_id, web_secret),
            "web_es256": basic(web_es.client_id, web_es_secret),
            "api": basic(resource.client_id, resource_secret),
            "signin": basic(signin.client_id, signin_secret),
        },
        "client_ids": {
            "web": web.client_id,
            "web_es256": web_es.client_id,
            "signin": signin.client_id,
        },
    }
    if saml is not None:
        fixtures["saml"] = saml
    if device is not None:
        fixtures["device"] = device
    if jwt_api is not None:
        fixtures["jwt_api_audience"] = jwt_api
    jwt_api_rs256 = jwt_api_client(
        client_id="bench-orders-api-rs256",
        audience="https://bench-api.example/orders-rs256",
        algorithm="",
    )
    if jwt_api_rs256 is not None:
        fixtures["jwt_api_rs256"] = jwt_api_rs256
    Path(args.out).write_text(json.dumps(fixtures, indent=2))
    analyze()


def device_app(pending: int = 1000) -> dict[str, str] | None:
    """A device app (RFC 8628) with `pending` devices waiting for their person: the device_poll
    op polls one of them (one indexed query per poll at 1,000 pending devices)."""
    try:
        from oauth_clients.models import DeviceAuthorization
    except ImportError:
        return None  # a tree without the device flow (bench/ab.py's "before")
    client, _secret = make_client(
        "bench-device",
        client_type=Client.CLIENT_PUBLIC,
        authorization_grant_type="urn:ietf:params:oauth:grant-type:device_code",
        redirect_uris="",
        kind="device",
    )
    expires = timezone.now() + timedelta(days=1)
    codes = [secrets.token_urlsafe(32) for _ in range(pending)]
    DeviceAuthorization.objects.bulk_create(
        [
            DeviceAuthorization(
                application=client,
                device_code=checksum(code),
                user_code=checksum(f"user-code-{n}"),
                scope="openid profile",
                expires=expires,
            )
            for n, code in enumerate(codes)
        ],
        batch_size=BATCH,
    )
    return {"client_id": client.client_id, "device_code": codes[0]}


def jwt_api_client(
    *,
    client_id: str = "bench-orders-api",
    audience: str = "https://bench-api.example/orders",
    algorithm: str | None = None,
) -> str | None:
    """An API (resource server) whose tokens are RFC 9068 JWTs; its audience, which the
    client_credentials_jwt op asks for. None in a tree without JWT APIs (an A/B's "before").
    Registered for ES256 when an EC key is configured (bench/run.py's `ec_key_env`), as a
    deployment that wants fast client-credentials grants registers its APIs; a tree whose APIs
    cannot choose signs RS256 whatever the column says."""
    from django.conf import settings

    kinds = dict(Client.Kind.choices)
    if "api" not in kinds or not hasattr(Client, "audience"):
        return None
    if algorithm is None:
        algorithm = "ES256" if getattr(settings, "IDP_OIDC_EC_PRIVATE_KEYS", []) else ""
    make_client(
        client_id,
        kind="api",
        audience=audience,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
        algorithm=algorithm,
    )
    return audience


def saml_app() -> dict[str, str] | None:
    """The bench SAML app, written directly (a seed, like the OIDC apps): NameID the email,
    the profile and email attributes, as the OIDC sign-in app's scopes. None in a tree without
    the SAML engine (an A/B's "before")."""
    try:
        from oauth_clients.models import SamlServiceProvider
        from oauth_clients.saml.idp import entity_id, sso_endpoints
    except ImportError:
        return None
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

    client = Client.objects.create(
        client_id=SAML_CLIENT_ID,
        name=SAML_CLIENT_ID,
        kind=Client.Kind.SAML,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris="",
        client_secret="",
        allowed_scopes="openid profile email",
        is_trusted=True,
    )
    SamlServiceProvider.objects.create(
        client=client,
        entity_id=SAML_ENTITY_ID,
        acs_urls=[
            {"url": SAML_ACS_URL, "binding": BINDING_HTTP_POST, "index": 0, "is_default": True}
        ],
        nameid_format=SamlServiceProvider.NameIdFormat.EMAIL,
    )
    return {
        "client_id": SAML_CLIENT_ID,
        "sp_entity_id": SAML_ENTITY_ID,
        "acs_url": SAML_ACS_URL,
        "idp_entity_id": entity_id(),
        # The AuthnRequest's Destination: our endpoint as the issuer names it (not the
        # loopback port the bench server happens to listen on).
        "destination": sso_endpoints()[BINDING_HTTP_REDIRECT],
    }


def assign(args: argparse.Namespace) -> None:
    """The person-facing bench apps open only to a group, as a company assigns its apps: every
    bench user is in `bench-team`, a subgroup of `bench-company`, to which the apps are assigned;
    each app has a role granted to the team (so the ID token carries `roles`). The rows are
    written directly: a seed, not an administrator's change."""
    from django.contrib.auth.models import Group

    from accounts.models import GroupProfile
    from oauth_clients.models import AppRole, Assignment, RoleGrant

    company = Group.objects.create(name="bench-company")
    team = Group.objects.create(name="bench-team")
    GroupProfile.objects.create(group=company)
    GroupProfile.objects.create(group=team, parent=company)
    try:  # the nesting's closure rows, in a tree that has them (an A/B's "before" may not)
        from accounts.services import rebuild_group_closure
    except ImportError:
        pass
    else:
        rebuild_group_closure(groups=[company])
    team.user_set.add(*_bench_users(args.users))
    apps = Client.objects.filter(
        client_id__in=["bench-web", "bench-web-es256", "bench-signin", SAML_CLIENT_ID]
    )
    for client in apps:
        client.access_policy = Client.AccessPolicy.ASSIGNED
        client.save(update_fields=["access_policy"])
        Assignment.objects.create(client=client, group=company)
        role = AppRole.objects.create(client=client, name="editor")
        RoleGrant.objects.create(role=role, group=team)
    analyze()


def _bench_users(count: int) -> list:
    return list(get_user_model().objects.filter(username__startswith="user").order_by("pk")[:count])


def refresh_pool(args: argparse.Namespace) -> None:
    """`count` live refresh tokens of the web client, each with its access token (as a code
    exchange leaves them), written as refresh-grant bodies."""
    client = Client.objects.get(client_id=args.client)
    users = _bench_users(50)
    now = timezone.now()
    clear = [secrets.token_urlsafe(32) for _ in range(args.count)]
    with transaction.atomic():
        for start in range(0, args.count, BATCH):
            chunk = clear[start : start + BATCH]
            access = AccessToken.objects.bulk_create(
                [
                    AccessToken(
                        user=users[i % len(users)],
                        application=client,
                        token="",
                        token_checksum=checksum(secrets.token_urlsafe(32)),
                        expires=now + timedelta(minutes=10),
                        scope="openid profile email",
                    )
                    for i in range(len(chunk))
                ]
            )
            RefreshToken.objects.bulk_create(
                [
                    RefreshToken(
                        user=users[i % len(users)],
                        application=client,
                        access_token=access[i],
                        token="",
                        token_checksum=checksum(value),
                        token_family=uuid.uuid4(),
                        expires=now + timedelta(days=14),
                        family_expires=now + timedelta(days=30),
                        auth_time=now,
                        amr=["pwd"],
                    )
                    for i, value in enumerate(chunk)
                ]
            )
    analyze(*GRANT_WRITES)
    with Path(args.out).open("w") as fh:
        for value in clear:
            fh.write(urlencode({"grant_type": "refresh_token", "refresh_token": value}) + "\n")


def code_pool(args: argparse.Namespace) -> None:
    """`count` unexchanged authorization codes (hashed, PKCE S256) written as exchange bodies.
    Their expiry is set past the bench run instead of the real 60 s (the rows are made ahead)."""
    client = Client.objects.get(client_id=args.client)
    users = _bench_users(50)
    now = timezone.now()
    clear = [secrets.token_urlsafe(24) for _ in range(args.count)]
    Grant.objects.bulk_create(
        [
            Grant(
                application=client,
                user=users[i % len(users)],
                code=hash_code(value),
                expires=now + timedelta(hours=1),
                redirect_uri=REDIRECT_URI,
                scope="openid profile email",
                code_challenge=CHALLENGE,
                code_challenge_method="S256",
                nonce="n-" + value[:8],
                claims="{}",
                sid=secrets.token_hex(16),
                auth_time=now,
                amr=["pwd"],
            )
            for i, value in enumerate(clear)
        ],
        batch_size=BATCH,
    )
    analyze(Grant, *GRANT_WRITES)
    with Path(args.out).open("w") as fh:
        for value in clear:
            body = {
                "grant_type": "authorization_code",
                "code": value,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": VERIFIER,
            }
            fh.write(urlencode(body) + "\n")


def fill(args: argparse.Namespace) -> None:
    """`rows` filler access tokens (and as many refresh tokens) of a filler client, in the same
    shape the grants write. PostgreSQL: one INSERT … SELECT generate_series per table."""
    client, _secret = make_client(f"bench-filler-{secrets.token_hex(3)}")
    user = _bench_users(1)[0]
    now = timezone.now()
    expires = now - timedelta(hours=2) if args.expired else now + timedelta(hours=1)
    at, rt = AccessToken._meta.db_table, RefreshToken._meta.db_table
    if connection.vendor != "postgresql":
        raise SystemExit("fill needs PostgreSQL (generate_series)")
    with transaction.atomic(), connection.cursor() as cursor:
        first_id = cursor.execute(f"SELECT coalesce(max(id), 0) FROM {at}").fetchone()[0]  # noqa: S608 (table names from our models)
        cursor.execute(
            f"""
            INSERT INTO {at} (token, token_checksum, expires, scope, created, updated,
                              resource, sid, code_checksum, application_id, user_id)
            SELECT '', encode(sha256(('filler-' || %s || '-' || g)::bytea), 'hex'), %s,
                   'openid profile email', %s, %s, '[]', md5(g::text), '', %s, %s
            FROM generate_series(1, %s) AS g
            """,  # noqa: S608 (table names from our models)
            [client.client_id, expires, now, now, client.pk, user.pk, args.rows],
        )
        if args.with_refresh:
            cursor.execute(
                f"""
                INSERT INTO {rt} (token, token_checksum, created, updated, revoked, resource,
                                  token_family, sid, expires, family_expires, auth_time, amr,
                                  access_token_id, application_id, user_id)
                SELECT '', encode(sha256(('filler-rt-' || %s || '-' || a.id)::bytea), 'hex'),
                       %s, %s, NULL, '[]', md5(a.id::text)::uuid, a.sid, %s, %s, %s, '["pwd"]',
                       a.id, %s, %s
                FROM {at} a WHERE a.id > %s AND a.application_id = %s
                """,  # noqa: S608 (table names from our models)
                [
                    client.client_id,
                    now,
                    now,
                    expires,
                    expires,
                    now,
                    client.pk,
                    user.pk,
                    first_id,
                    client.pk,
                ],
            )
    analyze(*GRANT_WRITES)
    print(json.dumps({"client": client.client_id, "rows": args.rows}))


def explain(args: argparse.Namespace) -> None:
    """EXPLAIN of every hot lookup, as PostgreSQL plans it on the current data."""
    from django.contrib.sessions.models import Session
    from django.db.models import F, Q

    now = timezone.now()
    probe = "0" * 64
    queries = {
        "access token by checksum (userinfo, introspection)": AccessToken.objects.select_related(
            "user"
        ).filter(token_checksum=probe),
        # No row lock since the one-statement rotation (oauth_clients/oidc/store.py); the grant
        # reads it joined with its client (token_policy._CLIENT_AND_REFRESH_TOKEN).
        "refresh token by checksum (refresh grant)": RefreshToken.objects.filter(
            token_checksum=probe
        )
        .select_related("access_token", "user")
        .order_by(F("revoked").desc(nulls_first=True)),
        "code by hash, locked (code exchange)": Grant.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(code=probe),
        "client by client_id (cache miss)": Client.objects.filter(client_id="bench-web"),
        "session by key": Session.objects.filter(session_key="x" * 32, expire_date__gt=now),
        "refresh family (reuse detection)": RefreshToken.objects.filter(
            token_family=uuid.uuid4(), revoked__isnull=True
        ),
        "tokens of a session (logout)": AccessToken.objects.filter(sid="x" * 32),
        "tokens of a code (code replay)": AccessToken.objects.filter(code_checksum=probe),
        "purge: expired access tokens": AccessToken.objects.filter(
            expires__lt=now, refresh_token__isnull=True
        ).values_list("pk", flat=True)[:2000],
        "purge: expired refresh tokens": RefreshToken.objects.filter(
            Q(family_expires__lt=now) | Q(revoked__isnull=True, expires__lt=now)
        ).values_list("pk", flat=True)[:2000],
    }
    lines = []
    with transaction.atomic():
        for label, queryset in queries.items():
            lines.append(f"-- {label}")
            lines.append(queryset.explain())
            lines.append("")
    Path(args.out).write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--out", required=True)
    p.set_defaults(func=setup)
    p = sub.add_parser("refresh-pool")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--client", default="bench-web")
    p.add_argument("--out", required=True)
    p.set_defaults(func=refresh_pool)
    p = sub.add_parser("code-pool")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--client", default="bench-web")
    p.add_argument("--out", required=True)
    p.set_defaults(func=code_pool)
    p = sub.add_parser("fill")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--expired", action="store_true")
    p.add_argument("--with-refresh", action="store_true")
    p.set_defaults(func=fill)
    p = sub.add_parser("assign")
    p.add_argument("--users", type=int, default=200)
    p.set_defaults(func=assign)
    p = sub.add_parser("explain")
    p.add_argument("--out", required=True)
    p.set_defaults(func=explain)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
