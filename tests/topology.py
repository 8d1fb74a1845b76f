"""Tests that run on a single Redis and on a Redis Cluster: marked ``@ON_BOTH``, they run twice, their
``base_url``, ``drain``, ``sql`` and ``target_stack`` the cluster stack's in the second run (tests/conftest.py)."""

from __future__ import annotations

import pytest

ON_BOTH = pytest.mark.parametrize("topology", ["single", "cluster"], indirect=True)
ON_CLUSTER = pytest.mark.parametrize("topology", ["cluster"], indirect=True)
"""A test of the cluster alone (a failover, a resharding): its fixtures are the cluster stack's."""
