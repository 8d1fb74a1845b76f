"""The dedup Lua scripts, each with the shared filter functions of ``bloom_lib.lua`` prepended."""

from __future__ import annotations

from importlib import resources


def load(name: str) -> str:
    folder = resources.files(__package__)
    return folder.joinpath("bloom_lib.lua").read_text() + "\n" + folder.joinpath(name).read_text()


def load_plain(package: str, name: str) -> str:
    """A script of ``package`` as it is, with nothing prepended."""
    return resources.files(package).joinpath(name).read_text()
