"""`make bench`: the IdP under gunicorn on loopback, driven by wrk; figures in docs/performance.md.

What one run does:
1. creates a database of its own (PostgreSQL; `--db sqlite` for a file in a temp directory),
   migrates it and seeds users and clients (bench/seed.py); `--rows N` adds N filler rows to
   the token tables first (the "scale with data" mode);
2. starts gunicorn with deploy/gunicorn.conf.py (tests/deploy/servers.py's `Server`), one
   worker per core, production settings (no debug), logs to a file;
3. for each operation: a warm-up, then `--runs` timed wrk runs (load generator on the same
   machine; Lua scripts in bench/wrk/ for bodies, headers, single-use credential pools, the
   five-request OIDC sign-in and the four-request SP-initiated SAML sign-in); single-use
   credentials (refresh tokens, codes) are minted before the
   runs with bulk inserts, never replayed;
4. for the token-endpoint operations, p99 at 70 % of the measured maximum: wrk paced with a
   per-connection delay (wrk2 is not in Debian), calibrated once against the latency seen;
5. prints and records medians, per-core rates, p50/p99, errors (non-2xx), worker RSS, the load
   generator's own CPU use, and the machine; compares with bench/last.json (the previous run)
   and replaces this configuration's block in docs/performance.md ("Today's figures"); the
   query plans of the hot lookups (EXPLAIN) stay in bench/last.json.

The load generator is wrk (C, one event loop per thread); Python here only orchestrates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import ldap_directory  # noqa: E402 (the project root goes on the path first)
from tests.deploy.servers import (  # noqa: E402
    Server,
    database_url,
    manage,
    production_env,
    temporary_database,
)

BENCH_DIR = ROOT / "bench"
LUA_DIR = BENCH_DIR / "wrk"
LAST_JSON = BENCH_DIR / "last.json"
PERFORMANCE_MD = ROOT / "docs" / "performance.md"
PYTHON = sys.executable
REDIS_URL = "redis://127.0.0.1:6379/12"  # a database number no test uses

# The speed targets (req/s; sign-in in sign-ins/s).
TARGETS = {
    "discovery": 2000,
    "jwks": 2000,
    "client_credentials": 800,
    # Client credentials for an API with RFC 9068 JWT tokens (no database write); also
    # at least twice the opaque grant's rate of the same run (printed beside the figures).
    "client_credentials_jwt": 2000,
    # The same grant for an API left on RS256 (the default): what the signature costs.
    "client_credentials_jwt_rs256": None,
    "refresh": 500,
    "code_exchange": None,
    "userinfo": 1200,
    "introspection": 1200,
    "signin": 40,
    # A person of the company directory (slapd on loopback): at most the directory's
    # bind round trip more per sign-in than the local password's, measured in the same run,
    # runs alternated (`directory_signin_line`).
    "directory_signin": None,
    # SAML sign-in: at least 80 % of the OIDC sign-in's rate on the same machine, in the same run
    # (the ratio is printed and written beside the figures, not an absolute target).
    "saml_signin": None,
    # A pending device's poll (one indexed read; mostly answered slow_down here).
    "device_poll": None,
}
# Rated in completed sign-ins/s, not HTTP requests/s.
SIGNIN_OPS = ("signin", "directory_signin", "saml_signin")
SAML_SIGNIN_TARGET_RATIO = 0.8
CC_JWT_TARGET_RATIO = 2.0
TOKEN_OPS = (
    "client_credentials",
    "client_credentials_jwt",
    "client_credentials_jwt_rs256",
    "refresh",
    "code_exchange",
)
ALL_OPS = (
    "discovery",
    "jwks",
    "client_credentials",
    "client_credentials_jwt",
    "client_credentials_jwt_rs256",
    "refresh",
    "code_exchange",
    "userinfo",
    "introspection",
    "signin",
    "directory_signin",
    "saml_signin",
    "device_poll",
)
# Measured run by run in turn (A, B, A, B, …) when both are asked for: on a shared machine a
# burst of load elsewhere then falls on both alike.
ALTERNATED = ("signin", "directory_signin")
RSS_TARGET_MIB = 120
P99_TARGET_MS = 50


def ec_key_env(tmp: Path) -> dict[str, str]:
    """An EC P-256 signing key beside the RSA one production_env writes, as a deployment that
    offers ES256 has (the bench's ES256 web app and its JWT API sign with it)."""
    from oauth_clients.keys import generate_ec_private_key_pem

    path = tmp / "signing-ec.pem"
    if not path.exists():
        path.write_text(generate_ec_private_key_pem())
    return {"IDP_OIDC_EC_PRIVATE_KEY_FILE": str(path)}


# ----------------------------------------------------------------------------- machine


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603 (our own fixed command lines)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def machine(db_url: str | None) -> dict[str, str]:
    import django
    import gunicorn
    import oauth2_provider

    cpu = re.search(r"model name\s*:\s*(.+)", _read("/proc/cpuinfo"))
    mem = re.search(r"MemTotal:\s*(\d+) kB", _read("/proc/meminfo"))
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu.group(1).strip() if cpu else platform.processor(),
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.__version__,
        "django-oauth-toolkit": oauth2_provider.__version__,
        "gunicorn": gunicorn.__version__,
        "wrk": _version(["wrk", "--version"]).split(" [")[0].removeprefix("wrk "),
    }
    if db_url:
        import psycopg

        with psycopg.connect(db_url.replace("postgres://", "postgresql://")) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    else:
        import sqlite3

        info["sqlite"] = sqlite3.sqlite_version
    return info


def speed() -> dict[str, float]:
    """How fast this VM is right now, in the unit the sign-in spends most: one Argon2id
    verification with the project's parameters (memory-bound: a 19 MiB block against an L3
    cache the vCPUs share with the host's other guests). The same code gave 18-20 ms one night
    and 27-49 ms the next with PyPI's wheel; the AVX2 build `make
    install` makes reads ~40 % lower on the same VM. Every recorded run carries it
    beside its figures; the block's "server CPU per request" of discovery is the
    interpreter-side gauge (a tight Python loop was tried and did not follow it). Median of 7,
    measured before the server starts and after it stops."""
    import argon2

    from accounts.hashers import OWASPArgon2PasswordHasher as hasher

    ph = argon2.PasswordHasher(
        time_cost=hasher.time_cost, memory_cost=hasher.memory_cost, parallelism=hasher.parallelism
    )
    encoded = ph.hash("bench")
    argon = []
    for _ in range(7):
        started = time.process_time()
        ph.verify(encoded, "bench")
        argon.append(1000 * (time.process_time() - started))
    return {"argon2id_verify_ms": statistics.median(argon)}


def load_average() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


# ----------------------------------------------------------------------------- processes


def stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name (which may contain spaces): state, ppid, ..."""
    return _read(f"/proc/{pid}/stat").rsplit(")", 1)[-1].split()


def process_ids() -> Iterator[str]:
    """Every process /proc lists (one may exit before it is read)."""
    return (entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit())


def worker_pids(master: int) -> list[int]:
    pids = []
    for pid in process_ids():
        fields = stat_fields(pid)  # fields[1]: the parent pid
        if len(fields) > 1 and fields[1] == str(master):
            pids.append(int(pid))
    return pids


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s*(\d+) kB", _read(f"/proc/{pid}/status"))
    return int(match.group(1)) / 1024 if match else 0.0


def cpu_by_pid(pids: list[int], *, children: bool = False) -> dict[int, float]:
    """CPU seconds (user + system) of each process still alive; with `children`, also that of
    the children each has waited for (a worker's xmlsec1 runs: pysaml2 signs a SAML assertion
    by running that program, whose CPU is the sign-in's too)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        fields = stat_fields(pid)
        if len(fields) > 15:
            spent = int(fields[11]) + int(fields[12])  # utime, stime
            if children:
                spent += int(fields[13]) + int(fields[14])  # cutime, cstime
            seconds[pid] = spent / ticks
    return seconds


def cpu_seconds(pids: list[int]) -> float:
    """The gunicorn processes' CPU, their finished children's included (the master's children
    are the workers, alive through a run: nothing of theirs is counted twice)."""
    return sum(cpu_by_pid(pids, children=True).values())


def database_backend_pids(url: str) -> list[int]:
    """PostgreSQL's server processes serving the bench's database (the workers' persistent
    connections): a grant's database work is CPU on this same machine, charged here. Found by
    their process titles (`postgres: 15/main: <user> <database> <client> <state>`) rather
    than through a connection of our own, so that `BackendCpu` can poll them during a run."""
    if not url.startswith("postgres"):
        return []
    name = f" {url.rsplit('/', 1)[1]} ".encode()
    pids = []
    for pid in process_ids():
        with contextlib.suppress(OSError):  # bytes: `_read` would decode any process's argv
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
            if title.startswith(b"postgres:") and name in title:
                pids.append(int(pid))
    return pids


class BackendCpu(threading.Thread):
    """CPU seconds of the bench database's backends over one run, read every half second.
    A worker reconnects when its connection reaches `CONN_MAX_AGE` (60 s in production
    settings): its old backend exits mid-run and keeps the CPU of its last reading, its new one
    is charged from zero. Two readings, at the start and the end, counted neither (a 60 s run
    showed 0.00 ms of PostgreSQL per sign-in)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.before = cpu_by_pid(database_backend_pids(url))
        self.last = dict(self.before)
        self.done = threading.Event()

    def read(self) -> None:
        self.last.update(cpu_by_pid(database_backend_pids(self.url)))

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.read()

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.read()
        return sum(spent - self.before.get(pid, 0.0) for pid, spent in self.last.items())


def minor_faults(pids: list[int]) -> int:
    """Minor page faults of these processes so far (a page the kernel maps and zeroes on first
    touch: Argon2id's 19 MiB block costs ~4,900 of them whenever malloc hands it fresh memory)."""
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if len(fields) > 7:
            total += int(fields[7])
    return total


def run_wrk(
    url: str, script: str, args: list[str], *, threads: int, connections: int, seconds: float
) -> dict:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / script),
        url,
        "--",
        *args,
    ]
    env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR)}
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # noqa: S603 (our own fixed command lines)
    _pid, status, usage = os.wait4(process.pid, 0)
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if status != 0 or line is None:
        raise RuntimeError(f"wrk failed ({status}):\n{out}\n{err}")
    if os.environ.get("BENCH_DEBUG") and err:
        print(err[-3000:], file=sys.stderr)
    result = json.loads(line.removeprefix("BENCH_JSON "))
    result["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
    seconds_run = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds_run
    result["ops_per_s"] = result["completed"] / seconds_run
    return result


# ----------------------------------------------------------------------------- operations


def signin_authorize_query(fixtures: dict) -> str:
    """The query of the authorization request every bench sign-in starts with (the trusted
    sign-in app, PKCE S256 with the seed's verifier)."""
    return urlencode(
        {
            "response_type": "code",
            "client_id": fixtures["client_ids"]["signin"],
            "redirect_uri": fixtures["redirect_uri"],
            "scope": "openid profile email",
            "state": "bench-state",
            "code_challenge": fixtures["challenge"],
            "code_challenge_method": "S256",
        }
    )


class Bench:
    def __init__(
        self, args: argparse.Namespace, tmp: Path, env: dict[str, str], root: Path = ROOT
    ) -> None:
        self.args = args
        self.tmp = tmp
        self.env = env
        self.root = root  # the source tree served (bench/ab.py serves two)
        self.server: Server | None = None
        self.fixtures: dict = {}
        self.slapd: Any = None  # bench/directory.py's slapd, for `directory_signin`
        self.directory_users = 0

    def seed(self, *argv: str) -> str:
        command = [PYTHON, str(self.root / "bench" / "seed.py"), *argv]
        result = subprocess.run(  # noqa: S603 (our own fixed command lines)
            command, cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"seed {argv[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def pool(self, kind: str, count: int, client: str = "bench-web") -> str:
        path = self.tmp / f"{kind}-{time.time_ns()}.txt"
        self.seed(f"{kind}-pool", "--count", str(count), "--client", client, "--out", str(path))
        return str(path)

    def spec(self, op: str, seconds: float) -> tuple[str, str, list[str], int, int]:
        """(url, script, script args, threads, connections) for one run of `op`."""
        f = self.fixtures
        t, c = self.args.threads, self.args.connections
        token_url = f"{self.url}/o/token/"
        # Enough single-use credentials for the fastest rate we could see, never replayed.
        pool_size = int(seconds * self.args.pool_rate) + 200
        if op == "discovery":
            return f"{self.url}/.well-known/openid-configuration", "plain.lua", [], t, c
        if op == "jwks":
            return f"{self.url}/.well-known/jwks.json", "plain.lua", [], t, c
        if op == "client_credentials":
            body = "grant_type=client_credentials"
            return token_url, "plain.lua", ["POST", body, f["auth"]["machine"]], t, c
        if op in ("client_credentials_jwt", "client_credentials_jwt_rs256"):
            # The bench's JWT API is registered for ES256 (when the tree lets an API choose);
            # its twin stays on RS256, the default.
            audience_key = "jwt_api_audience" if op == "client_credentials_jwt" else "jwt_api_rs256"
            if audience_key not in f:
                raise RuntimeError(f"{op}: this tree has no such JWT API (bench/seed.py)")
            body = urlencode({"grant_type": "client_credentials", "resource": f[audience_key]})
            return token_url, "plain.lua", ["POST", body, f["auth"]["machine"]], t, c
        if op == "refresh":
            pool = self.pool("refresh", pool_size, self.args.client)
            return token_url, "pool.lua", [pool, f["auth"][self.args.client_key], str(t)], t, c
        if op == "code_exchange":
            pool = self.pool("code", pool_size, self.args.client)
            return token_url, "pool.lua", [pool, f["auth"][self.args.client_key], str(t)], t, c
        if op == "userinfo":
            bearer = "Bearer " + f["access_token"]
            return f"{self.url}/o/userinfo/", "plain.lua", ["GET", "", bearer], t, c
        if op == "introspection":
            body = urlencode({"token": f["access_token"]})
            return f"{self.url}/o/introspect/", "plain.lua", ["POST", body, f["auth"]["api"]], t, c
        if op in ("signin", "directory_signin"):
            query = signin_authorize_query(f)
            st = self.args.signin_threads
            args = [
                query,
                f["password"],
                str(f["users"]),
                f["auth"]["signin"],
                f["verifier"],
                f["redirect_uri"],
                str(st),
            ]
            if op == "directory_signin":
                if self.slapd is None:
                    raise RuntimeError("directory_signin: no directory was started")
                args[1], args[2] = ldap_directory.PASSWORD, str(self.directory_users)
                args.append(ldap_directory.USER_PREFIX)
            return self.url, "signin.lua", args, st, st
        if op == "saml_signin":
            if "saml" not in f:
                raise RuntimeError("saml_signin: this tree has no SAML engine (bench/seed.py)")
            saml = f["saml"]
            st = self.args.signin_threads
            args = [
                f["password"],
                str(f["users"]),
                saml["sp_entity_id"],
                saml["acs_url"],
                saml["destination"],
                str(st),
            ]
            return self.url, "saml_signin.lua", args, st, st
        if op == "device_poll":
            if "device" not in f:
                raise RuntimeError("device_poll: this tree has no device flow (bench/seed.py)")
            body = urlencode(
                {
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    "device_code": f["device"]["device_code"],
                    "client_id": f["device"]["client_id"],
                }
            )
            return token_url, "device_poll.lua", [body], t, c
        raise ValueError(op)

    def wrk(self, op: str, seconds: float, pace_ms: int = 0) -> dict:
        url, script, args, threads, connections = self.spec(op, seconds)
        if pace_ms:
            connections = self.args.paced_connections
            threads = min(threads, connections)
            if script == "pool.lua":
                args[2] = str(threads)
            args = [*args, *([""] * (3 - len(args)))] if script == "plain.lua" else args
            args.append(str(pace_ms))
        assert self.server is not None
        assert self.server.process is not None
        pids = [self.server.process.pid, *worker_pids(self.server.process.pid)]
        database_cpu = BackendCpu(self.env.get("DATABASE_URL", ""))
        database_cpu.start()
        cpu_before = cpu_seconds(pids)
        faults_before = minor_faults(pids)
        slapd_pids = [self.slapd.process.pid] if self.slapd is not None else []
        slapd_before = cpu_seconds(slapd_pids)
        try:
            result = run_wrk(
                url, script, args, threads=threads, connections=connections, seconds=seconds
            )
        finally:
            db_cpu = database_cpu.stop()
        result["server_cpu_s"] = cpu_seconds(pids) - cpu_before
        # The directory's CPU (slapd on this machine): a directory sign-in's work too.
        result["slapd_cpu_s"] = cpu_seconds(slapd_pids) - slapd_before
        result["db_cpu_s"] = db_cpu
        result["server_minor_faults"] = minor_faults(pids) - faults_before
        result["rss_mib"] = max(rss_mib(p) for p in worker_pids(self.server.process.pid))
        if result["exhausted"]:
            raise RuntimeError(f"{op}: the credential pool ran dry; raise --pool-rate")
        return result

    def profile(self, op: str) -> Path:
        """py-spy on every worker while wrk drives `op`; returns a summary file (and keeps the
        collapsed stacks next to it for flame graphs)."""
        assert self.server is not None
        assert self.server.process is not None
        self.wrk(op, self.args.warmup)
        seconds = round(self.args.duration)
        recorders = []
        for pid in worker_pids(self.server.process.pid):
            out = self.tmp / f"profile-{op}-{pid}.txt"
            cmd = [
                str(Path(PYTHON).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(seconds),
            ]
            cmd += ["--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking"]
            if self.args.profile_gil:
                cmd.append("--gil")  # only samples holding the GIL: where the CPU goes
            recorders.append(
                (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out)  # noqa: S603 (our own fixed command lines)
            )
        self.wrk(op, seconds)
        for process, _out in recorders:
            process.wait(timeout=60)
        summary = BENCH_DIR / "profiles" / f"{op}.txt"
        summary.parent.mkdir(exist_ok=True)
        summary.write_text(summarize_profiles([out for _p, out in recorders], op))
        return summary

    def purge_under_load(self) -> dict:
        """Client-credentials grants before and while `manage.py purge_tokens` deletes
        `--purge-rows` expired tokens: the batched purge must not stall the grants."""
        rows = self.args.purge_rows
        started = time.monotonic()
        self.seed("fill", "--rows", str(rows), "--expired")
        fill_seconds = time.monotonic() - started
        self.wrk("client_credentials", self.args.warmup)
        before = [self.wrk("client_credentials", 5) for _ in range(2)]
        purge = subprocess.Popen(  # noqa: S603 (our own fixed command line)
            [PYTHON, "manage.py", "purge_tokens", "--pause", str(self.args.purge_pause)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = time.monotonic()
        during = []
        while purge.poll() is None:
            during.append(self.wrk("client_credentials", 5))
        purge_seconds = time.monotonic() - started
        out, err = purge.communicate()
        if purge.returncode != 0:
            raise RuntimeError(f"purge_tokens failed:\n{out}\n{err}")
        return {
            "rows": rows,
            "fill_seconds": fill_seconds,
            "purge_seconds": purge_seconds,
            "purge_report": out.strip(),
            "rate_before": statistics.median(r["rps"] for r in before),
            "p99_before_ms": max(r["p99_us"] for r in before) / 1000,
            "rate_during": statistics.median(r["rps"] for r in during),
            "rates_during": [round(r["rps"]) for r in during],
            "p99_during_ms": max(r["p99_us"] for r in during) / 1000,
            "errors_during": sum(r["non2xx"] + r["socket_errors"] for r in during),
        }

    def measure(self, op: str) -> dict:
        self.wrk(op, self.args.warmup)
        return self.summarize(op, [self.wrk(op, self.args.duration) for _ in range(self.args.runs)])

    def measure_alternated(self, ops: tuple[str, ...]) -> dict[str, dict]:
        """`ops` measured in turn, run by run, after a warm-up of each."""
        for op in ops:
            self.wrk(op, self.args.warmup)
        runs: dict[str, list[dict]] = {op: [] for op in ops}
        for _ in range(self.args.runs):
            for op in ops:
                runs[op].append(self.wrk(op, self.args.duration))
        return {op: self.summarize(op, runs[op]) for op in ops}

    def summarize(self, op: str, runs: list[dict]) -> dict:
        per_second = [r["ops_per_s"] if op in SIGNIN_OPS else r["rps"] for r in runs]
        result = {
            "rate": statistics.median(per_second),
            "rates": [round(x, 1) for x in per_second],
            "p50_ms": statistics.median(r["p50_us"] for r in runs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in runs) / 1000,
            "errors": sum(r["non2xx"] + r["socket_errors"] + r["timeouts"] for r in runs),
            "requests": sum(r["requests"] for r in runs),
            "rss_mib": max(r["rss_mib"] for r in runs),
            "wrk_cpu_share": statistics.median(
                r["wrk_cpu_s"] / (r["wrk_cpu_s"] + r["server_cpu_s"]) for r in runs
            ),
            "server_cpu_per_request_ms": statistics.median(
                1000 * r["server_cpu_s"] / max(r["requests"], 1) for r in runs
            ),
            "db_cpu_per_request_ms": statistics.median(
                1000 * r["db_cpu_s"] / max(r["requests"], 1) for r in runs
            ),
            "server_minor_faults_per_request": statistics.median(
                r["server_minor_faults"] / max(r["requests"], 1) for r in runs
            ),
        }
        if op in SIGNIN_OPS:
            result["http_requests_per_s"] = statistics.median(r["rps"] for r in runs)
            result["server_cpu_per_signin_ms"] = statistics.median(
                1000 * r["server_cpu_s"] / max(r["completed"], 1) for r in runs
            )
            result["slapd_cpu_per_signin_ms"] = statistics.median(
                1000 * r["slapd_cpu_s"] / max(r["completed"], 1) for r in runs
            )
            result["db_cpu_per_signin_ms"] = statistics.median(
                1000 * r["db_cpu_s"] / max(r["completed"], 1) for r in runs
            )
        result["per_core"] = result["rate"] / (os.cpu_count() or 1)
        if op in TOKEN_OPS and self.args.paced:
            result["paced"] = self.paced(op, result["rate"])
        return result

    def paced(self, op: str, max_rate: float) -> dict:
        """p99 at 70 % of the maximum rate: each connection waits `delay` ms before each request,
        so the offered rate is connections / (delay + latency). The delay is calibrated once
        against the latency measured at the first guess, then the runs are measured."""
        target = 0.7 * max_rate
        conns = self.args.paced_connections
        period_ms = conns * 1000 / target
        guess = self.wrk(op, self.args.warmup + 3, pace_ms=max(1, round(period_ms)))
        mean_ms = guess["mean_us"] / 1000
        delay = max(1, round(period_ms - mean_ms))
        runs = [self.wrk(op, self.args.duration, pace_ms=delay) for _ in range(self.args.runs)]
        return {
            "target_rate": target,
            "delay_ms": delay,
            "connections": conns,
            "rate": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_us"] for r in runs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in runs) / 1000,
            "errors": sum(r["non2xx"] + r["socket_errors"] + r["timeouts"] for r in runs),
        }


def print_result(op: str, r: dict) -> None:
    paced = r.get("paced")
    print(
        f"[bench] {op}: {fmt_rate(r['rate'])}/s {r['rates']} p50 "
        f"{r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms errors {r['errors']} "
        f"rss {r['rss_mib']:.0f} MiB "
        f"cpu/req {r['server_cpu_per_request_ms']:.2f} ms "
        f"db cpu/req {r['db_cpu_per_request_ms']:.2f} ms "
        f"faults/req {r['server_minor_faults_per_request']:.0f}"
        + (
            f" cpu/sign-in {r['server_cpu_per_signin_ms']:.1f} ms"
            if "server_cpu_per_signin_ms" in r
            else ""
        )
        + (f" | at 70 %: {paced['rate']:.0f}/s p99 {paced['p99_ms']:.1f} ms" if paced else ""),
        flush=True,
    )


def worker_connections(args: argparse.Namespace) -> int:
    """gunicorn's per-worker connection cap for this bench.

    wrk opens its keep-alive connections once, and each stays with the worker that accepted it.
    Both workers wait on the one listening socket and the first awake wins, so 8 connections
    were seen split 8/0 (`ss -tnp`): one worker served everything and the rate halved (discovery
    1,500/s in one run, 3,300/s in the next). A load balancer in front spreads connections in
    production; here each worker takes at most its share of the largest connection count any
    operation uses (plus its threads, which gthread reserves), so neither can take them all.
    """
    largest = max(args.connections, args.paced_connections, args.signin_threads)
    return math.ceil(largest / args.workers) + args.gunicorn_threads


def summarize_profiles(paths: list[Path], op: str, top: int = 45) -> str:
    """Inclusive share of samples per function (file:function), from py-spy's collapsed stacks,
    restricted to request-handling stacks (those that pass through Django's handler)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if "get_response" not in stack:
                continue  # idle workers waiting in select/accept
            count = int(count_text)
            total += count
            frames = [re.sub(r" \((.*?):\d+\)$", r" (\1)", f) for f in stack.split(";")]
            frames = [
                f.replace(str(ROOT) + "/", "").replace(".venv/lib/python3.11/site-packages/", "")
                for f in frames
            ]
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
            own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"# py-spy profile of {op}: {total} request samples", "", "## inclusive"]
    for frame, count in sorted(inclusive.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"{100 * count / max(total, 1):5.1f}%  {frame}")
    lines += ["", "## self"]
    for frame, count in sorted(own.items(), key=lambda x: -x[1])[:top]:
        lines.append(f"{100 * count / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.sqlite3'}"
        return
    with temporary_database("idp_bench") as name:
        yield database_url(name)


# ----------------------------------------------------------------------------- reporting


def label_of(args: argparse.Namespace) -> str:
    parts = [args.db]
    if args.rows:
        parts.append(f"rows={args.rows}")
    if args.assigned:
        parts.append("assigned")
    if args.redis:
        parts.append("redis")
    if args.purge_rows:
        parts.append(f"purge={args.purge_rows}")
        if args.purge_pause != 0.05:
            parts.append(f"pause={args.purge_pause:g}")
    if args.label:
        parts.append(args.label)
    return " ".join(parts)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def table(results: dict[str, dict], previous: dict[str, dict] | None) -> list[str]:
    lines = [
        "| operation | rate/s (median) | per core | p50 ms | p99 ms | errors | worker RSS MiB "
        "| target | vs previous |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for op, r in results.items():
        target = TARGETS.get(op)
        verdict = "—" if target is None else ("met" if r["rate"] >= target else "MISSED")
        target_text = "—" if target is None else f"≥ {target:,} ({verdict})"
        delta = "—"
        if previous and op in previous and previous[op].get("rate"):
            delta = f"{100 * (r['rate'] / previous[op]['rate'] - 1):+.1f} %"
        lines.append(
            f"| {op} | {fmt_rate(r['rate'])} | {fmt_rate(r['per_core'])} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['errors']} | {r['rss_mib']:.0f} | {target_text} "
            f"| {delta} |"
        )
    paced = {op: r["paced"] for op, r in results.items() if "paced" in r}
    if paced:
        lines += [
            "",
            "p99 at 70 % of the maximum rate (wrk, per-connection delay):",
            "",
            "| operation | target rate/s | achieved rate/s | connections × delay | p50 ms | p99 ms "
            "| errors | p99 < 50 ms |",
            "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
        ]
        for op, p in paced.items():
            ok = "met" if p["p99_ms"] < P99_TARGET_MS else "MISSED"
            lines.append(
                f"| {op} | {p['target_rate']:,.0f} | {p['rate']:,.0f} | "
                f"{p['connections']} × {p['delay_ms']} ms | {p['p50_ms']:.1f} | "
                f"{p['p99_ms']:.1f} | {p['errors']} | {ok} |"
            )
    return lines


def saml_signin_line(results: dict[str, dict]) -> str:
    """The SAML sign-in's figures, and its rate against the OIDC sign-in's of the same run."""
    s = results["saml_signin"]
    line = (
        f"SAML sign-in (SP-initiated, HTTP-Redirect): {fmt_rate(s['rate'])} sign-ins/s = "
        f"{s['http_requests_per_s']:,.0f} HTTP requests/s (4 per sign-in), workers' CPU "
        f"{s.get('server_cpu_per_signin_ms', 0):.1f} ms per sign-in"
    )
    oidc = results.get("signin")
    if oidc and oidc["rate"]:
        ratio = s["rate"] / oidc["rate"]
        verdict = "met" if ratio >= SAML_SIGNIN_TARGET_RATIO else "MISSED"
        line += (
            f" against the OIDC sign-in's {oidc.get('server_cpu_per_signin_ms', 0):.1f} ms; "
            f"{100 * ratio:.0f} % of the OIDC sign-in rate (target ≥ "
            f"{100 * SAML_SIGNIN_TARGET_RATIO:.0f} %: {verdict})"
        )
    return line + "."


def directory_signin_line(results: dict[str, dict], bind_ms: dict[str, float] | None) -> str:
    """The directory sign-in against the local-password sign-in of the same run (the bound: at
    most the directory's bind round trip more per sign-in). The runs alternate, so each pair
    of neighbouring runs met the same load from elsewhere: the rate ratio is given per pair.
    The verdict is on the work one sign-in costs this machine (CPU of the workers, of slapd
    and of PostgreSQL's backends per completed sign-in), which a busy machine disturbs far
    less than the rate; it is set against the bind measured from this process (a new
    connection and one simple bind on loopback)."""
    d = results["directory_signin"]
    line = (
        f"Directory sign-in (slapd on loopback, {{SSHA}} passwords): {fmt_rate(d['rate'])} "
        f"sign-ins/s (runs {d['rates']}), CPU per sign-in: workers "
        f"{d['server_cpu_per_signin_ms']:.1f} ms, slapd {d['slapd_cpu_per_signin_ms']:.1f} ms, "
        f"PostgreSQL {d['db_cpu_per_signin_ms']:.1f} ms"
    )
    local = results.get("signin")
    if not (local and local["rate"] and d["rate"]):
        return line + "."
    pairs = sorted(x / y for x, y in zip(d["rates"], local["rates"], strict=True) if y)
    line += (
        f"; the local-password sign-in, runs alternated with it: {fmt_rate(local['rate'])} "
        f"sign-ins/s (runs {local['rates']}), CPU per sign-in: workers "
        f"{local['server_cpu_per_signin_ms']:.1f} ms, PostgreSQL "
        f"{local['db_cpu_per_signin_ms']:.1f} ms. Directory / local rate, run pair by run pair: "
        f"median ×{statistics.median(pairs):.2f} (×{pairs[0]:.2f}–×{pairs[-1]:.2f})"
    )

    def work(r: dict) -> float:
        return float(
            r["server_cpu_per_signin_ms"]
            + r.get("slapd_cpu_per_signin_ms", 0.0)
            + r.get("db_cpu_per_signin_ms", 0.0)
        )

    extra_ms = work(d) - work(local)
    line += f"; the directory adds {extra_ms:+.1f} ms of CPU per sign-in"
    if bind_ms:
        verdict = "met" if extra_ms <= bind_ms["median"] else "MISSED"
        line += (
            f" against a bind round trip of {bind_ms['median']:.2f} ms (median; p90 "
            f"{bind_ms['p90']:.2f} ms; target: at most one bind more: {verdict})"
        )
    return line + "."


def cc_jwt_line(results: dict[str, dict]) -> str:
    """The JWT client-credentials grant's rate against the opaque one's of the same run."""
    jwt_rate = results["client_credentials_jwt"]["rate"]
    line = f"Client credentials for a JWT API (RFC 9068, no write): {fmt_rate(jwt_rate)}/s"
    opaque = results.get("client_credentials")
    if opaque and opaque["rate"]:
        ratio = jwt_rate / opaque["rate"]
        verdict = "met" if ratio >= CC_JWT_TARGET_RATIO else "MISSED"
        line += (
            f", {ratio:.2f} × the opaque grant's {fmt_rate(opaque['rate'])}/s (target ≥ "
            f"{CC_JWT_TARGET_RATIO:.0f} ×: {verdict})"
        )
    return line + "."


def write_markdown(label: str, record: dict, previous: dict | None) -> str:
    m = record["machine"]
    r = record["results"]
    block = [
        f"<!-- bench:{label}:start -->",
        f"### {label} — {record['when']}",
        "",
        f"Machine: {m['nproc']} × {m['cpu']}, {m['memory']} RAM, Linux {m['kernel']}; "
        + ", ".join(
            f"{k} {v}" for k, v in m.items() if k not in {"nproc", "cpu", "memory", "kernel"}
        )
        + ".",
        f"Server: gunicorn, {record['config']['workers']} workers × "
        f"{record['config']['threads']} threads ({record['config']['worker_class']}), "
        f"production settings; load generator wrk on the same machine "
        f"({record['config']['connections']} connections, each worker accepting at most "
        f"{record['config'].get('worker_connections', '—')}; {record['config']['runs']} runs × "
        f"{record['config']['duration']} s, medians). Load average before / after: "
        f"{record['load_before']} / {record['load_after']}."
        + (
            " Machine speed before / after: Argon2id verification "
            f"{record['speed']['argon2id_verify_ms']:.1f} / "
            f"{record['speed_after']['argon2id_verify_ms']:.1f} ms."
            if record.get("speed") and record.get("speed_after")
            else ""
        ),
        "",
        *table(r, (previous or {}).get("results")),
        "",
    ]
    if "signin" in r:
        s = r["signin"]
        block.append(
            f"Sign-in: {fmt_rate(s['rate'])} sign-ins/s = {s['http_requests_per_s']:,.0f} "
            f"HTTP requests/s (5 per sign-in); wrk used {100 * s['wrk_cpu_share']:.0f} % of "
            "the CPU time spent by wrk and the server together."
        )
        block.append("")
    if "saml_signin" in r:
        block.append(saml_signin_line(r))
        block.append("")
    if "directory_signin" in r:
        block.append(directory_signin_line(r, record.get("directory_bind_ms")))
        block.append("")
    if "client_credentials_jwt" in r:
        block.append(cc_jwt_line(r))
        block.append("")
    cpu_lines = ", ".join(
        f"{op} {x['server_cpu_per_request_ms']:.2f}" for op, x in r.items() if op not in SIGNIN_OPS
    )
    if cpu_lines:
        block.append(f"Server CPU per request (ms): {cpu_lines}.")
    db_lines = ", ".join(
        f"{op} {x['db_cpu_per_request_ms']:.2f}"
        for op, x in r.items()
        if op not in SIGNIN_OPS and "db_cpu_per_request_ms" in x
    )
    if db_lines and any(x.get("db_cpu_per_request_ms", 0) > 0 for x in r.values()):  # not SQLite
        block.append(f"PostgreSQL's CPU per request (ms, its server processes): {db_lines}.")
    with_empty = {op: x for op, x in r.items() if "empty_rate" in x}
    if with_empty:
        block += ["", "Same server, same minutes: empty token tables, then filled:", ""]
        block += [
            f"- {op}: {fmt_rate(x['empty_rate'])}/s empty → {fmt_rate(x['rate'])}/s filled "
            f"({100 * (x['rate'] / x['empty_rate'] - 1):+.1f} %)"
            for op, x in with_empty.items()
        ]
    purge = record.get("purge")
    if purge:
        block += [
            "",
            f"Purge under load: `purge_tokens` deleted {purge['rows']:,} expired rows "
            f"({purge['purge_report']}) in {purge['purge_seconds']:.0f} s while "
            f"client-credentials grants ran: {purge['rate_before']:,.0f}/s before, "
            f"{purge['rate_during']:,.0f}/s during (5-second windows: {purge['rates_during']}), "
            f"worst p99 {purge['p99_before_ms']:.0f} ms before, {purge['p99_during_ms']:.0f} ms "
            f"during, {purge['errors_during']} errors.",
        ]
    block.append(f"<!-- bench:{label}:end -->")
    text = "\n".join(block)
    current = PERFORMANCE_MD.read_text() if PERFORMANCE_MD.exists() else "# Performance\n"
    pattern = re.compile(
        rf"<!-- bench:{re.escape(label)}:start -->.*?<!-- bench:{re.escape(label)}:end -->",
        re.S,
    )
    if pattern.search(current):
        current = pattern.sub(lambda _m: text, current)
    else:
        marker = "<!-- bench:results -->"
        if marker in current:
            current = current.replace(marker, f"{marker}\n\n{text}", 1)
        else:
            current = current.rstrip() + "\n\n## Today's figures\n\n" + text + "\n"
    PERFORMANCE_MD.write_text(current)
    return text


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rows", type=int, default=0, help="filler rows in the token tables")
    parser.add_argument(
        "--assigned", action="store_true", help="the apps open only to a (nested) group"
    )
    parser.add_argument("--redis", action="store_true", help="cache, sessions, limits in Redis")
    parser.add_argument("--ops", default=",".join(ALL_OPS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--gunicorn-threads", type=int, default=1)
    parser.add_argument("--signin-threads", type=int, default=8)
    parser.add_argument(
        "--directory-users", type=int, default=200, help="people in the directory_signin slapd"
    )
    parser.add_argument("--paced-connections", type=int, default=8)
    parser.add_argument("--no-paced", dest="paced", action="store_false")
    parser.add_argument("--pool-rate", type=float, default=1200, help="credentials per second")
    parser.add_argument("--client", default="bench-web", help="client of refresh/code pools")
    parser.add_argument(
        "--purge-rows", type=int, default=0, help="measure grants while purging N expired rows"
    )
    parser.add_argument(
        "--purge-pause", type=float, default=0.05, help="purge_tokens --pause (s between batches)"
    )
    parser.add_argument("--label", default="")
    parser.add_argument("--no-record", dest="record", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument(
        "--serve", action="store_true", help="seed, start and wait (for manual experiments)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profiles into bench/profiles/ instead"
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only threads holding the GIL (CPU, not waits)",
    )
    args = parser.parse_args()
    args.client_key = {"bench-web": "web", "bench-web-es256": "web_es256"}[args.client]
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench installs Debian's wrk)", file=sys.stderr)
        return 2
    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    unknown = set(ops) - set(ALL_OPS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    label = label_of(args)
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    load_before = load_average()
    calibration = speed()
    print(
        f"[bench] machine speed: Argon2id verification {calibration['argon2id_verify_ms']:.1f} ms",
        flush=True,
    )
    slapd = None
    bind_rtt: dict[str, float] | None = None
    try:
        with database(args.db, tmp) as db_url:
            overrides = {
                "DATABASE_URL": db_url,
                # Sign-ins come from many addresses through one trusted proxy (X-Forwarded-For).
                "IDP_TRUSTED_PROXY_COUNT": "1",
                "IDP_LOG_LEVEL": "WARNING",
            }
            if args.redis:
                overrides["REDIS_URL"] = REDIS_URL
            if "directory_signin" in ops:
                # The directory is configured for the whole server: the local sign-in of the
                # same run then pays what it pays in a deployment with a directory (one indexed
                # query of accounts/backends' neighbour, directory/backend.py, for its name).
                slapd = ldap_directory.start(args.directory_users)
                overrides.update(ldap_directory.environment(slapd))
            env = production_env(tmp, **overrides, **ec_key_env(tmp))
            print(f"[bench] {label}: migrating and seeding", flush=True)
            manage("migrate", "--noinput", env=env, timeout=600)
            manage("collectstatic", "--noinput", env=env, timeout=600)
            bench = Bench(args, tmp, env)
            fixtures_path = tmp / "fixtures.json"
            bench.seed("setup", "--out", str(fixtures_path))
            bench.fixtures = json.loads(fixtures_path.read_text())
            if args.assigned:
                bench.seed("assign")
            if slapd is not None:
                # The directory's people mirrored here first, as the scheduled sync would have:
                # the runs then measure sign-ins, not first sign-ins creating accounts.
                manage("ldap_sync", env=env, timeout=600)
                bench.slapd, bench.directory_users = slapd, args.directory_users
                bind_rtt = ldap_directory.bind_round_trip_ms(slapd)
                print(
                    f"[bench] directory bind round trip: median {bind_rtt['median']:.2f} ms, "
                    f"p90 {bind_rtt['p90']:.2f} ms",
                    flush=True,
                )
            explain = ""
            if args.redis:
                import redis

                redis.Redis.from_url(REDIS_URL).flushdb()
            env["GUNICORN_THREADS"] = str(args.gunicorn_threads)
            env["GUNICORN_MAX_REQUESTS"] = "0"  # no recycling in the middle of a measurement
            env["GUNICORN_WORKER_CONNECTIONS"] = str(worker_connections(args))
            bench.server = Server("bench", env, tmp, workers=args.workers).start()
            results: dict[str, dict] = {}
            if args.serve:
                print(f"[bench] serving {bench.url}; fixtures in {fixtures_path}", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    bench.server.process.wait()
                bench.server.stop()
                return 0
            try:
                for op in ops if args.profile else ():
                    print(f"[bench] profile {op}: {bench.profile(op)}", flush=True)
                empty: dict[str, dict] = {}
                if args.rows and not args.profile:
                    # The same operations on the empty tables first, minutes apart on the same
                    # server, then again over the filled tables.
                    for op in ops:
                        empty[op] = bench.measure(op)
                        print(f"[bench] {op} (empty tables): {fmt_rate(empty[op]['rate'])}/s")
                if args.rows:
                    print(f"[bench] filling {args.rows:,} rows", flush=True)
                    started = time.monotonic()
                    print(bench.seed("fill", "--rows", str(args.rows), "--with-refresh").strip())
                    fill_seconds = time.monotonic() - started
                    print(f"[bench] filled in {fill_seconds:.1f} s", flush=True)
                if args.db == "postgres":
                    plan_path = tmp / "explain.txt"
                    bench.seed("explain", "--out", str(plan_path))
                    explain = plan_path.read_text()
                alternated = tuple(op for op in ALTERNATED if op in ops)
                for op in () if args.profile else ops:
                    if op in results:
                        continue  # measured with its alternate
                    print(f"[bench] {op} …", flush=True)
                    if len(alternated) > 1 and op in alternated:
                        print(f"[bench] alternating {', '.join(alternated)}", flush=True)
                        measured = bench.measure_alternated(alternated)
                    else:
                        measured = {op: bench.measure(op)}
                    for name, r in measured.items():
                        if name in empty:
                            r["empty_rate"] = empty[name]["rate"]
                        results[name] = r
                        print_result(name, r)
                purge = bench.purge_under_load() if args.purge_rows else None
                if purge:
                    print(f"[bench] purge under load: {json.dumps(purge)}", flush=True)
                info = machine(db_url if args.db == "postgres" else None)
            finally:
                bench.server.stop()
    finally:
        if slapd is not None:
            ldap_directory.stop(slapd)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.profile:
        return 0
    record = {
        "label": label,
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": info,
        "load_before": load_before,
        "load_after": load_average(),
        "speed": calibration,
        "speed_after": speed(),
        "config": {
            "workers": args.workers,
            "threads": args.gunicorn_threads,
            "worker_class": "gthread",
            "connections": args.connections,
            "worker_connections": worker_connections(args),
            "runs": args.runs,
            "duration": args.duration,
        },
        "results": results,
        "directory_bind_ms": bind_rtt,
        "purge": purge,
        "explain": explain,
    }
    history = json.loads(LAST_JSON.read_text()) if LAST_JSON.exists() else {}
    previous = history.get(label)
    text = "\n".join(table(results, (previous or {}).get("results")))
    print(text)
    if "saml_signin" in results:
        print(saml_signin_line(results))
    if "directory_signin" in results:
        print(directory_signin_line(results, bind_rtt))
    if args.record:
        write_markdown(label, record, previous)
        history[label] = record
        LAST_JSON.write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
        print(
            f"[bench] written to {PERFORMANCE_MD.relative_to(ROOT)} and "
            f"{LAST_JSON.relative_to(ROOT)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
