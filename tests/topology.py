"""Tests that run on a single Redis and on a Redis Cluster: marked ``@ON_BOTH``, they run twice, their
``base_url``, ``drain``, ``sql`` and ``target_stack`` the cluster stack's in the second run (tests/conftest.py)."""

from __future__ import annotations

import pytest

ON_BOTH = pytest.mark.parametrize("topology", ["single", "cluster"], indirect=True)
