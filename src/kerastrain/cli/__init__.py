"""The command line: parse, call one library function, render, map errors to exit codes.
Each module registers its commands on the one Typer app (`kerastrain.cli.app`)."""

import signal

from kerastrain.cli import runs, sweep, tools, train  # noqa: F401  (they register the commands)
from kerastrain.cli.app import app


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a run as Ctrl-C does: recorded, resumable


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    app()


__all__ = ["app", "main"]
