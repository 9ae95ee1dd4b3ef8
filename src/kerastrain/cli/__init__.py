"""The command line: parse, call one library function, render, map errors to exit codes.
Each module registers its commands on the one Typer app (`kerastrain.cli.app`)."""

from kerastrain.cli import runs, sweep, tools, train  # noqa: F401  (they register the commands)
from kerastrain.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
