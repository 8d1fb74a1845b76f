"""What several integration tests do alike: a scratch database (to measure a query plan at scale, or to
migrate), and a long poll held open while something else happens."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

from core.settings import Settings
from gateway.migrate import migrate


@contextlib.asynccontextmanager
async def scratch_dsn(settings: Settings, name: str) -> AsyncIterator[str]:
    """A fresh, empty database (no migration applied), dropped afterwards: its DSN."""
    admin = await asyncpg.connect(settings.stores.database_url)
    await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield settings.stores.database_url.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_database(settings: Settings, name: str) -> AsyncIterator[asyncpg.Connection]:
    """A fresh database with every migration applied, dropped afterwards."""
    async with scratch_dsn(settings, name) as dsn:
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            yield conn
        finally:
            await conn.close()


def plan_nodes(plan_json: str, parents: dict[str, str] | None = None) -> list[str]:
    """The nodes of an EXPLAIN (FORMAT JSON) plan, each as "<node type> <index name>"; an index of a partition
    is named by its partitioned table's index when ``parents`` (``index_parents``) is given."""
    parents = parents or {}
    nodes, todo = [], [json.loads(plan_json)[0]["Plan"]]
    while todo:
        node = todo.pop()
        index = node.get("Index Name", "")
        table = node.get("Relation Name", "") if node["Node Type"] == "Seq Scan" else ""
        nodes.append(f"{node['Node Type']} {parents.get(index, index) or table}".strip())
        todo += node.get("Plans", [])
    return nodes


async def empty_tables(conn: asyncpg.Connection) -> set[str]:
    """The tables without a row (as ANALYZE found them): a month's partition not reached yet, a default one."""
    rows = await conn.fetch("SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples <= 0")
    return {r["relname"] for r in rows}


async def index_parents(conn: asyncpg.Connection) -> dict[str, str]:
    """Each index of a partition, with the partitioned table's index it belongs to."""
    rows = await conn.fetch(
        "SELECT c.relname AS index, p.relname AS parent FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i'"
    )
    return {r["index"]: r["parent"] for r in rows}


def long_poll_during(
    poll: Callable[[], dict[str, Any]], action: Callable[[], Any]
) -> tuple[dict[str, Any], Any, float]:
    """Start ``poll`` in a thread, run ``action``, wait for the poll: its answer, the action's result, and how
    long the poll took (s)."""
    answer: dict[str, Any] = {}

    def run() -> None:
        began = time.monotonic()
        answer["got"] = poll()
        answer["took_s"] = time.monotonic() - began

    poller = threading.Thread(target=run)
    poller.start()
    done = action()
    poller.join(30)
    return answer["got"], done, answer["took_s"]
