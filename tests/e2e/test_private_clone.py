"""A newcomer's first `make run` works wherever they clone: in a private folder as root (root's home and any
`mktemp -d` are drwx------, which the postgres user cannot cross), and at a depth where the cluster's socket
path would not fit in a unix socket address. The cluster then lives elsewhere, linked from .data/postgres;
a second start reuses it and `make clean` removes it."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.devstack import Stack, free_port

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def private_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="private-clone-"))  # 0700, as mktemp -d
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stack(data: Path) -> Stack:
    return Stack(data, redis_port=free_port(), pg_port=free_port(), sim_port=free_port(), port=free_port())


def _query(stack: Stack, sql: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(f"postgresql://gateway@127.0.0.1:{stack.pg_port}/gateway")
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def _clean(clone: Path) -> None:
    """`make clean` in the clone, with this tree's Makefile (the one under test)."""
    done = subprocess.run(
        ["make", "-s", "-C", str(clone), "-f", str(ROOT / "Makefile"), "clean"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_clone_in_a_private_folder_as_root_gets_a_cluster_postgres_can_reach(
    private_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the postgres user is only involved when the stack runs as root")
    assert stat.S_IMODE(private_folder.stat().st_mode) == 0o700 and private_folder.stat().st_uid == 0
    clone = private_folder / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=60)
    data = clone / ".data"
    link = data / "postgres"
    cluster: Path | None = None
    stack = _stack(data)
    try:
        stack.start_stores()
        line = capsys.readouterr().out
        assert "postgres: the cluster lives in " in line and "cannot reach" in line, line
        assert link.is_symlink()
        cluster = Path(os.readlink(link))
        assert private_folder not in cluster.parents
        assert f"the cluster lives in {cluster}, linked from {link}" in line
        assert cluster.stat().st_uid != 0 and stat.S_IMODE(cluster.stat().st_mode) == 0o700
        assert _query(stack, "SELECT current_setting('data_directory')") == str(cluster)
        assert _query(stack, "SELECT current_setting('unix_socket_directories')") == str(cluster)
        assert (cluster / f".s.PGSQL.{stack.pg_port}").is_socket()
        _query(stack, "CREATE TABLE kept AS SELECT 42 AS n")
        stack.stop()

        again = _stack(data)  # a second start: the same cluster, found through the link
        stack = again
        again.start_stores()
        assert Path(os.readlink(link)) == cluster
        assert f"the cluster lives in {cluster}" in capsys.readouterr().out
        assert _query(again, "SELECT n FROM kept") == 42
        again.stop()

        # Nobody's folders changed their permissions.
        assert stat.S_IMODE(private_folder.stat().st_mode) == 0o700 and private_folder.stat().st_uid == 0
        _clean(clone)
        assert not cluster.exists() and not data.exists()
    finally:
        stack.stop()
        if cluster is not None:
            shutil.rmtree(cluster, ignore_errors=True)


def test_a_clone_too_deep_for_a_socket_path_gets_a_cluster_elsewhere(private_folder: Path) -> None:
    data = private_folder / ("a-clone-folder-with-a-long-name-" * 3) / ".data"
    link = data / "postgres"
    assert len(f"{link}/.s.PGSQL.54321") > 107
    stack = _stack(data)
    cluster: Path | None = None
    try:
        stack.start_postgres()
        cluster = Path(os.readlink(link))
        assert _query(stack, "SELECT current_setting('data_directory')") == str(cluster)
        stack.stop()
        _clean(data.parent)
        assert not cluster.exists() and not data.exists()
    finally:
        stack.stop()
        if cluster is not None:
            shutil.rmtree(cluster, ignore_errors=True)
