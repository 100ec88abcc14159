"""gunicorn settings for the IdP image (`gunicorn --config deploy/gunicorn.conf.py idp.wsgi`).

Every value can be overridden from the environment (GUNICORN_*). Logs: gunicorn's own messages as
JSON on stdout; the per-request JSON access line is written by the application
(`idp.request_log`, logger `idp.request`), because only it knows the URL name, the user and the
request id, and it never writes the query string. gunicorn's own access log stays off so each
request is one line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

# gunicorn puts its working directory (the repository root; /app in the image) on sys.path
# before it reads this file.
from idp.web_workers import env_int, web_worker_count

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# GUNICORN_WORKERS, WEB_CONCURRENCY or 2 per CPU plus one (idp/web_workers.py); the deploy check
# on the cache (oauth_clients/checks.py) counts the same way.
workers = web_worker_count()
worker_class = "gthread"
threads = env_int("GUNICORN_THREADS", 2)
# Open connections per worker (gthread keeps idle keep-alive connections on their worker).
worker_connections = env_int("GUNICORN_WORKER_CONNECTIONS", 1000)
# Graceful: a worker stuck for 30 s is replaced; on SIGTERM (rolling update, scale-in) workers
# finish the requests in flight for up to 25 s, inside Kubernetes' 40 s grace period.
timeout = env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 25)
# Shorter than the reverse proxy's idle timeout (Caddy and ingress-nginx default to 60 s+).
keepalive = env_int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so a slow leak can never take an instance down.
max_requests = env_int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# Heartbeat files in memory: the root filesystem is read-only in Kubernetes.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (tmpfs by design)
# The application decides from X-Forwarded-* (IDP_TRUSTED_PROXY_COUNT); gunicorn must not.
forwarded_allow_ips = ""
proxy_allow_ips = ""
limit_request_line = 8190
limit_request_fields = 100
# No runtime control socket: one fixed path per user ($HOME/.gunicorn) would be shared by every
# instance on a host, and the home directory is read-only in the image.
control_socket_disable = True

accesslog = None


class _NoAccessLogger(Logger):
    """gunicorn's logger without its access line at all.

    With `logconfig_dict` set, gunicorn builds every request's access-log atoms (a dict of ~20
    fields) before handing them to the `gunicorn.access` logger, which we route to a null
    handler: ~3 % of a token request's CPU for a line nobody reads (py-spy --gil).
    """

    def _compute_access_log_enabled(self) -> bool:
        return False


logger_class = _NoAccessLogger
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
        },
        "null": {"class": "logging.NullHandler"},
    },
    # Replaces gunicorn's defaults whole (its default root logger names a handler removed here).
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": loglevel.upper(), "propagate": False},
        # Its line carries the raw request line, query string (codes, state) included: dropped.
        "gunicorn.access": {"handlers": ["null"], "level": "INFO", "propagate": False},
    },
}

# Prometheus multiprocess mode: every worker writes its values to files in this directory and
# /metrics adds them up. It must be set before a worker imports prometheus_client, and be empty
# when the server starts (stale files from a previous run would be counted again).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="idp-prometheus-")


def on_starting(server: object) -> None:
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
