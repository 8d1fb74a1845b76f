"""The ASGI entry point gunicorn loads: ``gateway.asgi:app``, configured from the environment (read here, once).

deploy/gunicorn.conf.py checks the same settings in gunicorn's master first, so that a configuration error is one
line and exit status 2 rather than a traceback in every worker.
"""

from __future__ import annotations

from core.settings import from_env
from gateway.app import create_app

app = create_app(from_env())
