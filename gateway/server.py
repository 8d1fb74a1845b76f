"""The gateway's gunicorn worker class: uvicorn's, plus a drain on SIGTERM, and connections guarded by
gateway/connections.py (header and body deadlines, header size, connections per process).

On SIGTERM a process first marks itself draining (``/readyz`` answers 503, so a load balancer's health check
takes it out) and goes on serving for ``GATEWAY_DRAIN_DELAY_S``, the same job as a Kubernetes preStop pause.
Only then does uvicorn close the listener, finish the requests in flight and exit. gunicorn's
``graceful_timeout`` bounds the whole: keep it above the delay plus the longest request. SIGINT and SIGQUIT
(gunicorn's fast stops) skip the delay.
"""

from __future__ import annotations

import functools
import signal
import sys
import time
from types import FrameType
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from gateway.connections import GuardedProtocol


class DrainingServer(Server):
    def __init__(self, config: Config, app: Any, delay_s: float) -> None:
        super().__init__(config)
        self.app = app
        self.delay_s = delay_s
        self.drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.should_exit:
            super().handle_exit(sig, frame)
            return
        self.app.state.draining = True
        if self.drain_until is None:
            self.drain_until = time.monotonic() + self.delay_s

    async def on_tick(self, counter: int) -> bool:
        # Ticks come every 0.1 s: the listener closes at most that long after the delay.
        if self.drain_until is not None and not self.should_exit and time.monotonic() >= self.drain_until:
            super().handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)


class DrainingWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn_worker ships no type hints
    """``worker_class`` of deploy/gunicorn.conf.py. Mirrors ``UvicornWorker._serve`` (uvicorn-worker 0.4) with
    the draining server in place of uvicorn's, and the guarded protocol in place of httptools' own."""

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        self.config.http = functools.partial(GuardedProtocol, guard=self.wsgi.state.settings.http)
        server = DrainingServer(self.config, self.wsgi, self.wsgi.state.settings.api.drain_delay_s)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
