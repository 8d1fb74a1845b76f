"""Loading a package's Lua script (the scripts live beside the modules that run them)."""

from __future__ import annotations

from importlib import resources


def load(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text()
