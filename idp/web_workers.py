"""How many web worker processes one IdP instance runs, decided once for two readers.

deploy/gunicorn.conf.py starts that many gunicorn workers, and the deploy check on the cache
(oauth_clients/checks.py) asks the same question: a cache of each process's own is wrong as soon
as there are several. Plain Python (no Django): gunicorn imports it before any app is loaded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def cpu_count() -> int:
    """CPUs this container may use: the cgroup v2 quota if set, else the affinity mask."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, len(os.sched_getaffinity(0)))


def web_worker_count() -> int:
    """GUNICORN_WORKERS, else WEB_CONCURRENCY (gunicorn's own variable, set by many hosting
    platforms), else 2 per CPU plus one.

    Sign-in hashes passwords (Argon2id, CPU-bound) and token requests wait on the database: 2
    workers per CPU plus one, 2 threads each, keeps the CPU busy without queueing behind slow
    I/O."""
    return env_int("GUNICORN_WORKERS", env_int("WEB_CONCURRENCY", 2 * cpu_count() + 1))
