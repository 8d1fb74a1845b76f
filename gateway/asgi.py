"""The ASGI entry point gunicorn loads: ``gateway.asgi:app``, configured from the environment."""

from __future__ import annotations

from gateway.app import create_app
from gateway.settings import from_env

app = create_app(from_env())
