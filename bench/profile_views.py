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
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import ec_key_env  # noqa: E402
from tests.deploy.servers import production_env, temporary_database  # noqa: E402

OPS = (
    "client_credentials",
    "client_credentials_jwt",
    "client_credentials_jwt_rs256",
    "userinfo",
    "introspection",
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
    environ = dict(template)
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
        env = production_env(tmp, IDP_LOG_LEVEL="WARNING", **ec_key_env(tmp))
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
            for _ in range(300):
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
        for _ in range(300):
            call(app, template)
    cpu: dict[str, list[float]] = {op: [] for op in templates}
    for round_no in range(rounds):
        order = list(templates) if round_no % 2 == 0 else list(reversed(templates))
        for op in order:
            started = time.process_time()
            for _ in range(n):
                call(app, templates[op])
            cpu[op].append((time.process_time() - started) / n * 1e6)
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


class _nothing:
    def __enter__(self):
        return ""

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    raise SystemExit(main())
