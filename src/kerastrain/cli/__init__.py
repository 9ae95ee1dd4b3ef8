"""The command line: parse, call one library function, render, map errors to exit codes.
Each module registers its commands on the one Typer app (`kerastrain.cli.app`)."""

import os
import signal
import sys

from kerastrain.cli import deploy, runs, sweep, tools, train  # noqa: F401  (they register the commands)
from kerastrain.cli.app import app


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: recorded, resumable


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except SystemExit as done:
        if "tensorflow" not in sys.modules:
            raise
        _leave(done.code)


def _leave(code: object) -> None:
    """End a process that loaded TensorFlow at once: every file is written and closed by
    now, and TensorFlow's own teardown (thread pools, atexit hooks) takes a second or two
    here, at times a minute. Output is flushed first; the exit code is Typer's."""
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["app", "main"]
