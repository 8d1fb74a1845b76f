"""The dedup Lua scripts, each with the shared filter functions of ``bloom_lib.lua`` prepended."""

from __future__ import annotations

from core import lua


def load(name: str) -> str:
    return lua.load(__package__, "bloom_lib.lua") + "\n" + lua.load(__package__, name)
