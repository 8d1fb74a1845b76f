"""gunicorn settings of the gateway. The worker class was chosen by measurement (deploy/README.md, "Server").

Bind elsewhere with `-b HOST:PORT`; WEB_CONCURRENCY sets the processes (default: one per core).
"""

import os
import sys

from prometheus_client import multiprocess

wsgi_app = "gateway.asgi:app"
bind = "127.0.0.1:8080"
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
# uvicorn's worker plus a drain on SIGTERM: /readyz turns 503 for GATEWAY_DRAIN_DELAY_S (default 5 s) while
# the process still serves, then it stops accepting and finishes what is in flight (gateway/server.py).
worker_class = "gateway.server.DrainingWorker"
# SIGTERM to exit, drain delay included: the Kubernetes grace period (30 s) must be longer.
graceful_timeout = 20
# Recycle each process after about this many requests (jitter: not all at once), bounding any slow leak.
max_requests = 200_000
max_requests_jitter = 20_000
timeout = 30
keepalive = 5
backlog = 2048
accesslog = None  # the app writes its own JSON access log (gateway.access), without paths or queries
errorlog = "-"
loglevel = "info"


def on_starting(server):
    # The settings and the campaign checked once in the master: a mistake is one line and exit status 2, not a
    # traceback in every worker that gunicorn would start again and again.
    from core.settings import ConfigError, from_env
    from gateway.app import check

    try:
        check(from_env())
    except ConfigError as exc:
        print(exc.line(), file=sys.stderr, flush=True)
        sys.exit(2)


def post_fork(server, worker):
    # Each process takes its part of the pipeline's drain rate when shedding (ratelimit/pipeline.py).
    os.environ["GATEWAY_PROCESSES"] = str(server.cfg.workers)


def child_exit(server, worker):
    # Merge a dead worker's metrics into the totals so /metrics keeps counting across restarts.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
