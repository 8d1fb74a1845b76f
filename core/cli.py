"""What every command of the project does at its entry point: read the settings once, and turn a configuration
error into one line (``error: <file or variable>: <where>: <what is wrong>``) and exit status 2, never a
traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Protocol

from core.settings import ConfigError

EXIT_CONFIG = 2


class Main(Protocol):
    def __call__(self, argv: list[str] | None = None) -> int: ...


def entry_point(main: Callable[[list[str] | None], int]) -> Main:
    """Wrap a command's ``main``: a ``ConfigError`` anywhere below it ends the command with one line."""

    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except ConfigError as exc:
            print(exc.line(), file=sys.stderr)
            return EXIT_CONFIG

    return run
