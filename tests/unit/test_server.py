"""The draining server: SIGTERM marks the app draining at once and stops the server only after the delay;
SIGINT stops it at once."""

from __future__ import annotations

import asyncio
import signal
import time
from types import SimpleNamespace

from uvicorn.config import Config

from gateway.server import DrainingServer


def server(delay_s: float) -> tuple[DrainingServer, SimpleNamespace]:
    app = SimpleNamespace(state=SimpleNamespace(draining=False))
    return DrainingServer(Config(app=app), app, delay_s), app


def test_sigterm_drains_first_then_exits_after_the_delay() -> None:
    s, app = server(30.0)
    s.handle_exit(signal.SIGTERM, None)
    deadline = s.drain_until
    assert app.state.draining and deadline is not None and deadline > time.monotonic() + 29
    assert not asyncio.run(s.on_tick(1)) and not s.should_exit
    s.handle_exit(signal.SIGTERM, None)  # a second SIGTERM neither restarts the delay nor cuts it
    assert s.drain_until == deadline and not s.should_exit
    s.drain_until = time.monotonic()  # the delay has passed
    assert asyncio.run(s.on_tick(2)) and s.should_exit


def test_sigint_exits_at_once() -> None:
    s, _ = server(30.0)
    s.handle_exit(signal.SIGINT, None)
    assert s.should_exit and asyncio.run(s.on_tick(1))
