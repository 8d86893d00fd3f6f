"""Shared behaviour of the ``python -m md2tf.*`` entry points: bad input gives one line, not a traceback.

``app.run(cli.main(main))`` wraps an absl ``main``: a `ConfigError`, ``ValueError`` or
``FileNotFoundError`` (a bad flag, config value, path or input file; the library raises these with a
message naming the flag or file) prints ``error: <message>`` on stderr as one line and exits with
status 2. Any other exception is a bug and keeps its traceback. ``MD2TF_TRACEBACK=1`` keeps the
traceback for the one-line errors too.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

#: Exit status of a configuration or input-data error (absl's usage errors exit with 1).
USAGE_EXIT_STATUS = 2


class ConfigError(ValueError):
    """A bad flag, configuration value or input file; its message names which."""


def one_line(error: BaseException) -> str:
    """The error's message with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(error).split()) or type(error).__name__


def main(function: Callable[[list[str]], int | None]) -> Callable[[list[str]], int | None]:
    """Wraps an absl ``main(argv)`` so that config and data errors end in one stderr line + exit 2."""

    @functools.wraps(function)
    def wrapped(argv: list[str]) -> int | None:
        try:
            return function(argv)
        except (ConfigError, ValueError, FileNotFoundError) as error:
            if os.environ.get("MD2TF_TRACEBACK"):
                raise
            print(f"error: {one_line(error)}", file=sys.stderr, flush=True)
            sys.exit(USAGE_EXIT_STATUS)

    return wrapped
