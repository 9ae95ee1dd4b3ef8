"""The command line's frame: the Typer app, the two consoles (stdout for results, stderr for
progress and messages), the options every command shares, and `guard`, which maps errors
to exit codes: 0 success; 2 the user's mistake (config, data, arguments), with a message
and no traceback; 1 an internal error; 130 interrupted. TensorFlow is imported only
inside the commands that build or run a model."""

from __future__ import annotations

import json
import shlex
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup

from kerastrain.errors import UserError

# `kerastrain --help` lists the commands in the order of the work: write a config, check
# it, train, use the model, then look back; any command not named here comes last.
WORKFLOW = ("init", "validate", "fit", "resume", "evaluate", "predict", "export", "serve",
            "sweep", "runs", "compare", "list", "schema")


class Commands(TyperGroup):
    """A group whose help lists its commands in `order` (then the others, as registered)
    with each one's whole first sentence (Click cuts them at the terminal's width with
    `...`), and whose argument errors read as plain sentences (Typer's choice errors come
    with pydantic's `Value error, ` in front)."""

    order: tuple[str, ...] = WORKFLOW

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: self.order.index(n) if n in self.order
                      else len(self.order) + names.index(n))

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:
        rows = [(name, command.get_short_help_str(limit=1 << 20))
                for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            exc.message = exc.message.removeprefix("Value error, ")
            raise


class PathsCommand(TyperCommand):
    """A command whose variadic argument (`RUN...`) is shown as the paths it takes,
    `RUN <path>`, as a single one is (Typer shows the annotation, `<list[Path]>`)."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperArgument) and param.nargs != 1:
                param.display_type = lambda ctx: "<path>"  # type: ignore[method-assign]
        return params


app = typer.Typer(
    cls=Commands,
    name="kerastrain",
    help="Turn a YAML experiment file into a trained, validated Keras model and a run directory.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config field by its dotted path (repeatable), e.g. training.epochs=50.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the essential "
                                           "result on stdout; no progress.")]
UnsafeOption = Annotated[bool, typer.Option(
    "--unsafe", help="Load a model that holds Python code (a Lambda layer), which loading "
                     "runs: a model file can carry any code, so by default it is refused "
                     "(Keras safe_mode). Only for runs you trust; see docs/reliability.md.")]
RunSetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override the run's config for this command; only training.batch_size (the rows "
         "scored at a time): the model stays as it was trained.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]

# How the command line gets past an error whose library call would take this argument.
OPTION_HINTS = {"force": "Pass --force.", "data": "Use --data FILE.",
                "overwrite": "Pass --overwrite to replace it.",
                "unsafe": "Pass --unsafe to load it anyway.",
                "port": "Pass --port N.", "fold": "Pass --fold with one of them."}


def guard(action: Callable[[], Any], as_json: bool = False, quiet: bool = False) -> Any:
    """Run a command body, turning errors into messages and exit codes (with --json, the
    error is also the one JSON object on stdout; with --quiet, an interrupted run's
    directory is still the one line on stdout)."""

    def fail(code: int, message: str, prefix: str = "", detail: str = "",
             **extra: Any) -> typer.Exit:
        err.print(prefix + message + detail, markup=False)
        if as_json:
            print_json({"status": "error", "exit_code": code, "error": message, **extra})
        return typer.Exit(code)

    try:
        return action()
    except UserError as exc:
        message = exc.render()
        if exc.option in OPTION_HINTS:
            message += f" {OPTION_HINTS[exc.option]}"
        raise fail(2, message, "error: ") from None
    except KeyboardInterrupt as exc:
        run_dir = getattr(exc, "run_dir", None)
        if run_dir is None:
            raise fail(130, "interrupted.") from None
        run_dir = Path(run_dir).absolute()  # as fit and resume print it when done
        command = f"kerastrain resume {shlex.quote(str(run_dir))}"
        if quiet and not as_json:
            sys.stdout.write(f"{run_dir}\n")
        raise fail(130, f"interrupted. The run directory {run_dir} keeps every finished fold "
                   f"and epoch; continue it with:\n  {command}", run_dir=str(run_dir),
                   resume=command) from None
    except typer.Exit:
        raise
    except Exception:
        raise fail(1, "internal error (a bug in kerastrain; please report it with this trace):",
                   detail="\n" + traceback.format_exc()) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def progress(quiet: bool, json_: bool) -> Any:
    """The live display on stderr, unless the output is for a script."""
    if quiet or json_:
        return None
    from kerastrain.cli.render import ConsoleProgress

    return ConsoleProgress(err)
