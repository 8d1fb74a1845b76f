"""The layers of ARCHITECTURE.md, enforced: imports point down only (apps -> libraries -> kernel), the two apps
never import each other, and every advisory lock id is distinct and named in core/locks.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core import locks

ROOT = Path(__file__).resolve().parents[2]
OURS = ("core", "ratelimit", "dedup", "gateway", "workers", "channel_client", "draw")
# What each package may import of the project besides itself.
ALLOWED = {
    "core": set(),
    "ratelimit": {"core"},
    "dedup": {"core"},
    "gateway": {"core", "ratelimit", "dedup"},
    "workers": {"core", "ratelimit", "dedup"},
    "channel_client": set(),  # a channel's client: it stands alone
    "draw": {"core"},  # the reference draw: the gateway through its public API only
}


def imported(path: Path) -> set[str]:
    """The project's top-level packages that a module imports (anywhere in it, functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(OURS)


@pytest.mark.parametrize("package", OURS)
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for other in imported(path) - ALLOWED[package] - {package}
    }
    assert wrong == set()


def test_the_layer_check_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from gateway.app import create_app\n    import workers.main\n")
    assert imported(module) == {"gateway", "workers"}


def test_every_advisory_lock_id_is_distinct() -> None:
    ids = [v for k, v in vars(locks).items() if k.isupper() and isinstance(v, int)]
    assert len(ids) >= 4
    assert len(set(ids)) == len(ids), locks.ALL
    assert sorted(locks.ALL.values()) == sorted(ids)


def test_no_lock_id_is_written_outside_core_locks() -> None:
    """An advisory lock call names its id from core/locks.py, never a number of its own."""
    literal = re.compile(r"pg_(try_)?advisory_(xact_)?lock(_shared)?\(\s*[0-9]")
    offenders = [
        str(path.relative_to(ROOT))
        for package in OURS
        for path in (ROOT / package).rglob("*.py")
        if literal.search(path.read_text())
    ]
    assert offenders == []
