"""Per-request CPU of the machine endpoints, in process: cProfile over N WSGI calls, no server.

    python bench/profile_views.py --ops client_credentials,client_credentials_jwt -n 3000
    python bench/profile_views.py --db postgres --redis --ops userinfo --assigned --top 40

The IdP's WSGI application is called directly with a made-up environ (production settings, no
debug), so the figures are the request's own CPU: no gunicorn, no load generator, no other
process in the samples. Each op first runs a warm-up, then `-n` timed calls (wall and this
process's CPU per request), then the same calls under cProfile, timed by the process's CPU
clock (`--wall` for wall time); `--top` prints the functions with the most cumulative time.
The database is a throwaway one seeded by bench/seed.py (`--assigned`: the person-facing apps
open to a group only, as `bench/ab.py --assigned-after`).

`discovery` is the floor every request pays (Django, the middleware, a cached document);
`signin` is bench/wrk/signin.lua's five requests, with `--rounds` also each step's CPU (the two
authorize requests summed); `login_page` the sign-in page alone, as an authorize request's
redirect reaches it:

    python bench/profile_views.py --db postgres --redis --ops signin --rounds 3 -n 150
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import ec_key_env, signin_authorize_query  # noqa: E402
from tests.deploy.servers import production_env, temporary_database  # noqa: E402

# Calls of each op before anything is timed (connections, compiled lookups, caches warm).
WARMUP_CALLS = 300

OPS = (
    "discovery",
    "client_credentials",
    "client_credentials_jwt",
    "client_credentials_jwt_rs256",
    "userinfo",
    "introspection",
    "signin",
    "login_page",
    "code_exchange",
    "refresh",
)


def environ_for(op: str, fixtures: dict) -> dict:
    """A WSGI environ of one request of `op` (the bench's own requests, bench/run.py)."""
    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if op in ("signin", "login_page"):
        query = signin_authorize_query(fixtures)
        if op == "login_page":
            # The sign-in page an authorization request redirects to (no cookie yet).
            return {
                **base,
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/accounts/login/",
                "QUERY_STRING": urlencode({"next": "/o/authorize/?" + query}),
                "_body": b"",
            }
        return {
            **base,
            "_signin": {
                "query": query,
                "password": fixtures["password"],
                "users": fixtures["users"],
                "auth": fixtures["auth"]["signin"],
                "verifier": fixtures["verifier"],
                "redirect_uri": fixtures["redirect_uri"],
            },
        }
    if op in ("code_exchange", "refresh"):
        # Codes and refresh tokens of bench-web minted ahead (bench/seed.py), one per call.
        from bench import seed

        out = Path(tempfile.mkdtemp(prefix="idp-profile-pool-")) / "pool.txt"
        minted = seed.code_pool if op == "code_exchange" else seed.refresh_pool
        minted(argparse.Namespace(count=POOL_SIZE, client="bench-web", out=str(out)))
        return {
            **base,
            "PATH_INFO": "/o/token/",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "HTTP_AUTHORIZATION": fixtures["auth"]["web"],
            "_pool": out.read_text().split(),
        }
    if op == "discovery":
        # The floor: a GET answered from a cached document, through the same middleware.
        return {
            **base,
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/.well-known/openid-configuration",
            "_body": b"",
        }
    if op == "userinfo":
        return {
            **base,
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/o/userinfo/",
            "HTTP_AUTHORIZATION": "Bearer " + fixtures["access_token"],
            "_body": b"",
        }
    if op == "introspection":
        body = urlencode({"token": fixtures["access_token"]})
        auth, path = fixtures["auth"]["api"], "/o/introspect/"
    else:
        params = {"grant_type": "client_credentials"}
        if op == "client_credentials_jwt":
            params["resource"] = fixtures["jwt_api_audience"]  # ES256 (bench/seed.py)
        elif op == "client_credentials_jwt_rs256":
            params["resource"] = fixtures["jwt_api_rs256"]
        body, auth, path = urlencode(params), fixtures["auth"]["machine"], "/o/token/"
    return {
        **base,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": auth,
        "_body": body.encode(),
    }


def call(app, template: dict) -> int:
    if "_signin" in template:
        return signin(app, template)
    environ = dict(template)
    if "_pool" in environ:  # single-use credentials: the next body of the pool
        body = environ.pop("_pool").pop().encode()
        environ["CONTENT_LENGTH"], environ["_body"] = str(len(body)), body
    environ["wsgi.input"] = io.BytesIO(environ.pop("_body"))
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, exc=None: status.append(s)))
    code = int(status[0].split()[0])
    if code != 200:
        raise RuntimeError(f"{template['PATH_INFO']}: {status[0]} {body[:300]!r}")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--redis", action="store_true", help="REDIS_URL (database 11)")
    parser.add_argument("--assigned", action="store_true")
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument(
        "--wall",
        action="store_true",
        help="profile wall time (default: this process's CPU time, so waits on the database, "
        "Redis and other processes of a loaded machine stay out of the figures)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print each SELECT of one request with PostgreSQL's EXPLAIN ANALYZE, then stop",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="no profile: the ops' CPU per request measured in turn, `-n` calls each per round, "
        "as medians with their spread (an in-process A/B of ops, e.g. ES256 against RS256)",
    )
    parser.add_argument("--save", type=Path, default=None, help="directory for .prof files")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idp-profile-"))
    with temporary_database("idp_profile") if args.db == "postgres" else _nothing() as db:
        env = production_env(
            tmp,
            IDP_LOG_LEVEL="WARNING",
            # The sign-in's addresses come in X-Forwarded-For, as in bench/run.py.
            IDP_TRUSTED_PROXY_COUNT="1",
            **ec_key_env(tmp),
        )
        if db:
            from tests.deploy.servers import database_url

            env["DATABASE_URL"] = database_url(db)
        else:
            env["DATABASE_URL"] = f"sqlite:///{tmp / 'idp.sqlite3'}"
        if args.redis:
            env["REDIS_URL"] = "redis://127.0.0.1:6379/11"
            import redis

            redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        env.pop("PATH", None)
        env.pop("HOME", None)
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if "signin" in args.ops or "login_page" in args.ops:
            call_command("collectstatic", interactive=False, verbosity=0)  # the pages' manifest
        from bench import seed

        fixtures_path = tmp / "fixtures.json"
        seed.setup(argparse.Namespace(users=200, out=str(fixtures_path)))
        if args.assigned:
            seed.assign(argparse.Namespace(users=200))
        fixtures = json.loads(fixtures_path.read_text())
        from django.core.wsgi import get_wsgi_application

        app = get_wsgi_application()
        import logging

        # The request log is formatted as in production, then written nowhere.
        loggers = [logging.getLogger(n) for n in ("", "idp", "idp.request", "idp.audit")]
        for handler in [h for logger in loggers for h in logger.handlers]:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
        ops = [o for o in args.ops.split(",") if o]
        if args.rounds:
            compare(app, {op: environ_for(op, fixtures) for op in ops}, args.rounds, args.n)
            return 0
        for op in ops:
            template = environ_for(op, fixtures)
            for _ in range(WARMUP_CALLS):
                call(app, template)
            if args.explain:
                explain(app, template, op)
                continue
            started = time.perf_counter()
            cpu = time.process_time()
            for _ in range(args.n):
                call(app, template)
            wall = (time.perf_counter() - started) / args.n * 1e6
            own = (time.process_time() - cpu) / args.n * 1e6
            print(f"== {op}: {wall:.0f} µs per request, {own:.0f} µs of this process's CPU")
            profile = cProfile.Profile() if args.wall else cProfile.Profile(time.process_time)
            profile.enable()
            for _ in range(args.n):
                call(app, template)
            profile.disable()
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                profile.dump_stats(args.save / f"{op}.prof")
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())
    return 0


def compare(app, templates: dict[str, dict], rounds: int, n: int) -> None:
    """Each op's CPU per request (µs), the ops driven in turn round after round (the order
    reversed every other round), so a machine whose speed drifts drifts for all of them."""
    import statistics

    for template in templates.values():
        for _ in range(WARMUP_CALLS):
            call(app, template)
    cpu: dict[str, list[float]] = {op: [] for op in templates}
    for round_no in range(rounds):
        order = list(templates) if round_no % 2 == 0 else list(reversed(templates))
        for op in order:
            started = time.process_time()
            for _ in range(n):
                call(app, templates[op])
            cpu[op].append((time.process_time() - started) / n * 1e6)
    if STEP_CPU:
        calls = rounds * n + WARMUP_CALLS  # the steps ran in the warm-up too
        for step, seconds in STEP_CPU.items():
            print(f"   {step}: {seconds / calls * 1e6:.0f} µs CPU per sign-in", flush=True)
    first = next(iter(templates))
    base = statistics.median(cpu[first])
    for op, values in cpu.items():
        median = statistics.median(values)
        print(
            f"== {op}: {median:.0f} µs CPU per request (rounds {min(values):.0f}–"
            f"{max(values):.0f}), ×{median / base:.2f} of {first}",
            flush=True,
        )


def explain(app, template: dict, op: str) -> None:
    """The plans of one request's reads (PostgreSQL: EXPLAIN ANALYZE, with the planner's and
    the executor's time)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        call(app, template)
    print(f"== {op}: {len(queries.captured_queries)} queries")
    for query in queries.captured_queries:
        print(query["sql"])
        if connection.vendor == "postgresql" and query["sql"].lstrip().upper().startswith("SELECT"):
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                print("\n".join(row[0] for row in cursor.fetchall()))
        print()


STEP_CPU: dict[str, float] = {}
# Codes or refresh tokens minted for the single-use ops: enough for the default -n, warm-up,
# profile and a few rounds.
POOL_SIZE = 20000


class _Step:
    """One request of the sign-in sequence: its status, headers and body."""

    def __init__(self, app, environ: dict, body: bytes = b"") -> None:
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        started: list = []
        cpu = time.process_time()
        self.body = b"".join(app(environ, lambda s, h, exc=None: started.append((s, h))))
        step = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
        STEP_CPU[step] = STEP_CPU.get(step, 0.0) + time.process_time() - cpu
        status, headers = started[0]
        self.status = int(status.split()[0])
        self.headers = headers

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def cookie(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == "set-cookie" and value.lstrip().startswith(name + "="):
                return value.lstrip().split(";", 1)[0].split("=", 1)[1]
        raise RuntimeError(f"sign-in: no {name} cookie (status {self.status}: {self.headers})")


def signin(app, template: dict) -> int:
    """bench/wrk/signin.lua's five requests in process: authorize, the login page, the login
    POST, authorize with the session, the code exchange (the next user each time)."""
    f = template["_signin"]
    f["n"] = n = f.get("n", 0) + 1
    base = {k: v for k, v in template.items() if not k.startswith("_")}
    base["HTTP_X_FORWARDED_FOR"] = f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250}"

    def get(path_query: str, **extra) -> _Step:
        path, _, query = path_query.partition("?")
        return _Step(
            app,
            {**base, "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, **extra},
        )

    def post(path_query: str, body: str, **extra) -> _Step:
        path, _, query = path_query.partition("?")
        return _Step(
            app,
            {
                **base,
                "REQUEST_METHOD": "POST",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": "application/x-www-form-urlencoded",
                **extra,
            },
            body.encode(),
        )

    step = get("/o/authorize/?" + f["query"])
    login = urlsplit(step.header("Location"))
    login_url = login.path + "?" + login.query
    page = get(login_url)
    csrf = page.cookie("idp_csrf")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)
    username = f"user{n % f['users']}"
    body = f"csrfmiddlewaretoken={token.decode()}&login={username}&password={quote(f['password'])}"
    done = post(login_url, body, HTTP_COOKIE=f"idp_csrf={csrf}")
    session = done.cookie("idp_session")
    back = urlsplit(done.header("Location"))
    step = get(back.path + "?" + back.query, HTTP_COOKIE=f"idp_session={session}")
    code = parse_qs(urlsplit(step.header("Location")).query)["code"][0]
    exchange = post(
        "/o/token/",
        f"grant_type=authorization_code&code={quote(code)}&redirect_uri="
        f"{quote(f['redirect_uri'], safe='')}&code_verifier={quote(f['verifier'])}",
        HTTP_AUTHORIZATION=f["auth"],
    )
    if exchange.status != 200:
        raise RuntimeError(f"sign-in: the code exchange answered {exchange.status}")
    return 200


class _nothing:
    def __enter__(self):
        return ""

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
