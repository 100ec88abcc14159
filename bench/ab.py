"""Interleaved before/after comparison: two source trees served side by side, driven in turn.

    python bench/ab.py --before /tmp/idp-before [--ops ...] [--rounds 3] [--duration 5]

On a machine shared with other work, rates drift by 2-3x within minutes, so two benches run
one after the other compare the machine's load, not the code. Here both trees (each with its
own database, seeded alike, under gunicorn with the same config) stay up, and each round drives
A then B (then B then A, alternately) for the same few seconds: drift hits both alike. The
before tree is e.g. `git archive <commit> | tar -x -C /tmp/idp-before` plus this bench/.
Prints and returns the per-operation medians and the ratio after/before.

    python bench/ab.py --before . --rows-after 1000000 --ops refresh

compares the same tree on empty token tables and on N filled ones (the "scale with data"
criterion), interleaved like any other A/B rather than minutes apart on one server;
`--assigned-after` compares apps open to everyone (before) with apps open only to a group.

    python bench/ab.py --pair signin,saml_signin [--rounds 6]

drives two operations of this tree alternately on one server (A then B, then B then A): the
target "SAML sign-in at least 80 % of the OIDC sign-in rate on the same machine", with the
per-round ratios as the spread and the workers' CPU per sign-in (xmlsec1 runs included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402 (the project root goes first)
    ALL_OPS,
    SIGNIN_OPS,
    Bench,
    ec_key_env,
    fmt_rate,
)
from tests.deploy import servers  # noqa: E402


def start_side(name: str, root: Path, args: argparse.Namespace, stack: contextlib.ExitStack):
    tmp = Path(tempfile.mkdtemp(prefix=f"idp-ab-{name}-"))
    db = stack.enter_context(servers.temporary_database(f"idp_ab_{name}"))
    env = servers.production_env(
        tmp,
        **ec_key_env(tmp),
        DATABASE_URL=servers.database_url(db),
        IDP_TRUSTED_PROXY_COUNT="1",
        IDP_LOG_LEVEL="WARNING",
        GUNICORN_THREADS=str(args.gunicorn_threads),
        GUNICORN_MAX_REQUESTS="0",
        # Each worker takes its share of wrk's connections (bench.run.worker_connections).
        GUNICORN_WORKER_CONNECTIONS=str(
            math.ceil(max(args.connections, args.signin_threads) / args.workers)
            + args.gunicorn_threads
        ),
    )
    # A tree whose gunicorn config predates GUNICORN_WORKER_CONNECTIONS takes it from here.
    env["GUNICORN_CMD_ARGS"] = f"--worker-connections={env['GUNICORN_WORKER_CONNECTIONS']}"
    if args.redis or (args.redis_after_only and name == "after"):
        # One Redis database per side: both seed clients with the same ids (and other secrets).
        env["REDIS_URL"] = f"redis://127.0.0.1:6379/{10 if name == 'before' else 12}"
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    original = servers.ROOT, servers.PYTHON
    servers.ROOT = root  # manage() and Server run in the side's own tree,
    # under its own virtualenv when it has one (an interpreter or dependency A/B).
    if (root / ".venv" / "bin" / "python").exists():
        servers.PYTHON = str(root / ".venv" / "bin" / "python")
    try:
        servers.manage("migrate", "--noinput", env=env, timeout=600)
        servers.manage("collectstatic", "--noinput", env=env, timeout=600)
        bench = Bench(args, tmp, env, root=root)
        fixtures = tmp / "fixtures.json"
        bench.seed("setup", "--out", str(fixtures))
        bench.fixtures = json.loads(fixtures.read_text())
        if args.rows_after and name == "after":
            print(f"[ab] filling {args.rows_after:,} rows on the after side", flush=True)
            print(bench.seed("fill", "--rows", str(args.rows_after), "--with-refresh").strip())
            # The fill's dirty pages are written out now, not during the first rounds.
            with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                conn.execute("CHECKPOINT")
        if args.assigned_after and name == "after":
            print("[ab] the after side's apps assigned to a group", flush=True)
            bench.seed("assign")
        bench.server = servers.Server(name, env, tmp, workers=args.workers).start()
    finally:
        servers.ROOT, servers.PYTHON = original
    stack.callback(bench.server.stop)
    return bench


def per_op(op: str, r: dict) -> tuple[float, float]:
    """(rate, server CPU ms per unit): sign-ins for the sign-in ops, requests otherwise."""
    units = r.get("completed", r["requests"]) if op in SIGNIN_OPS else r["requests"]
    rate = r["ops_per_s"] if op in SIGNIN_OPS else r["rps"]
    return rate, 1000 * r["server_cpu_s"] / max(units, 1)


def pair(args: argparse.Namespace) -> int:
    """`--pair A,B`: see the module docstring."""
    first, second = args.pair.split(",")
    rates: dict[str, list[float]] = {first: [], second: []}
    cpu: dict[str, list[float]] = {first: [], second: []}
    errors: dict[str, int] = {first: 0, second: 0}
    with contextlib.ExitStack() as stack:
        bench = start_side("pair", ROOT, args, stack)
        for op in (first, second):
            bench.wrk(op, args.warmup)
        for round_no in range(args.rounds):
            order = [first, second] if round_no % 2 == 0 else [second, first]
            for op in order:
                r = bench.wrk(op, args.duration)
                rate, cpu_ms = per_op(op, r)
                errors[op] += r["non2xx"] + r["socket_errors"] + r.get("timeouts", 0)
                rates[op].append(rate)
                cpu[op].append(cpu_ms)
    ratios = [b / a for a, b in zip(rates[first], rates[second], strict=True) if a]
    a, b = statistics.median(rates[first]), statistics.median(rates[second])
    result = {
        "rates": rates,
        "cpu_ms_per_unit": cpu,
        "ratio_of_medians": b / a if a else None,
        "round_ratios": ratios,
        "errors": errors,
    }
    print(
        f"[pair] {first} {fmt_rate(a)}/s, {second} {fmt_rate(b)}/s: ×{b / a:.2f} "
        f"(rounds ×{min(ratios):.2f}–×{max(ratios):.2f}); CPU per unit "
        f"{statistics.median(cpu[first]):.1f} / {statistics.median(cpu[second]):.1f} ms; "
        f"errors {errors[first]} / {errors[second]}",
        flush=True,
    )
    out = args.out or ROOT / "bench" / f"pair-{first}-{second}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--pair", default="", help="A,B: two ops of this tree, alternated")
    parser.add_argument("--ops", default=",".join(ALL_OPS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--signin-threads", type=int, default=8)
    parser.add_argument("--pool-rate", type=float, default=1200)
    parser.add_argument("--redis", action="store_true", help="cache, sessions, limits in Redis")
    parser.add_argument(
        "--redis-after-only",
        action="store_true",
        help="Redis for the 'after' side only: with --before . compares without/with Redis",
    )
    parser.add_argument(
        "--rows-after",
        type=int,
        default=0,
        help="filler token rows on the 'after' side only: with --before . compares empty/filled",
    )
    parser.add_argument(
        "--assigned-after",
        action="store_true",
        help="the 'after' side's person-facing apps open only to a (nested) group of its users",
    )
    parser.add_argument(
        "--after-ops",
        default="",
        help="the after side's op for each of --ops, in order (e.g. --ops client_credentials "
        "--after-ops client_credentials_jwt: the before tree's opaque grant against today's "
        "grant for a JWT API); default: the same ops",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.client, args.client_key = "bench-web", "web"
    if args.pair:
        return pair(args)
    if args.before is None:
        parser.error("--before is required (or --pair)")
    ops = [op for op in args.ops.split(",") if op]
    after_ops = [op for op in args.after_ops.split(",") if op] or ops
    if len(after_ops) != len(ops):
        parser.error("--after-ops names one op for each of --ops")
    results: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        sides = {
            "before": start_side("before", args.before.resolve(), args, stack),
            "after": start_side("after", ROOT, args, stack),
        }
        for op, after_op in zip(ops, after_ops, strict=True):
            side_op = {"before": op, "after": after_op}
            label = op if after_op == op else f"{op} → {after_op}"
            for name, bench in sides.items():
                bench.wrk(side_op[name], args.warmup)
            rates: dict[str, list[float]] = {"before": [], "after": []}
            cpu: dict[str, list[float]] = {"before": [], "after": []}
            db_cpu: dict[str, list[float]] = {"before": [], "after": []}
            for round_no in range(args.rounds):
                order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
                for name in order:
                    r = sides[name].wrk(side_op[name], args.duration)
                    rates[name].append(r["ops_per_s"] if op in SIGNIN_OPS else r["rps"])
                    cpu[name].append(1000 * r["server_cpu_s"] / max(r["requests"], 1))
                    db_cpu[name].append(1000 * r["db_cpu_s"] / max(r["requests"], 1))
            before, after = statistics.median(rates["before"]), statistics.median(rates["after"])
            results[label] = {
                "before": before,
                "after": after,
                "ratio": after / before if before else None,
                "cpu_ms_before": statistics.median(cpu["before"]),
                "cpu_ms_after": statistics.median(cpu["after"]),
                "db_cpu_ms_before": statistics.median(db_cpu["before"]),
                "db_cpu_ms_after": statistics.median(db_cpu["after"]),
                "rates": rates,
            }
            print(
                f"[ab] {label}: before {fmt_rate(before)}/s, after {fmt_rate(after)}/s "
                f"(×{after / before:.2f}); CPU/request {results[label]['cpu_ms_before']:.2f} → "
                f"{results[label]['cpu_ms_after']:.2f} ms; database CPU/request "
                f"{results[label]['db_cpu_ms_before']:.2f} → "
                f"{results[label]['db_cpu_ms_after']:.2f} ms",
                flush=True,
            )
    name = "ab-redis" if args.redis else "ab-redis-vs-db" if args.redis_after_only else "ab"
    if args.rows_after:
        name += f"-rows{args.rows_after}"
    out = args.out or ROOT / "bench" / f"{name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
