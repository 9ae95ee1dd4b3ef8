"""What the command line draws, at the width of a small terminal: nothing a user needs
(the fold, the epoch counter) is ever cut."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from rich.console import Console

from kerastrain.cli.render import ConsoleProgress

LOGS = {"loss": 0.123456, "accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.88,
        "val_sparse_top_k_categorical_accuracy": 0.97}


@pytest.mark.parametrize("width", [80, 60])
def test_progress_keeps_the_label_and_epoch_counter(width: int) -> None:
    buffer = StringIO()
    console = Console(width=width, file=buffer, force_terminal=True, color_system=None)
    progress = ConsoleProgress(console)
    progress.begin(5)
    progress.fold_begin("fold 0-3", 10)
    progress.epoch_end("fold 0-3", 3, 10, LOGS)
    progress.end()
    last = buffer.getvalue().split("\x1b[2K")[-1]
    assert "fold 0-3" in last and "3/10" in last
    assert "val_sparse_top_k_categorical_accuracy" in last.replace("\n", "").replace(" ", "")


# Every table the command line prints, at 80 columns on a terminal and to a pipe: each
# value (a number, a path, a run name, a header) stays whole on one line.

class _Screen:
    """The commands' stdout console replaced by one of `width` columns, a terminal or a
    pipe, whose text the test reads back."""

    def __init__(self, monkeypatch, width: int, terminal: bool):
        from kerastrain.cli import runs, sweep, train

        self.buffer = StringIO()
        console = Console(file=self.buffer, width=width, force_terminal=terminal,
                          color_system=None, highlight=False, soft_wrap=True)
        for module in (runs, sweep, train):
            monkeypatch.setattr(module, "out", console)
        self.width, self.terminal = width, terminal

    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()

    def assert_whole(self, values) -> None:
        lines = self.lines()
        for value in values:  # a text, or a pattern that tells a value from a path's part
            found = (value.search(line) if isinstance(value, re.Pattern) else str(value) in line
                     for line in lines)
            assert any(found), (value, self.buffer.getvalue())
        if self.terminal:  # a table's own lines fit the screen (a long path on a line of
            for line in lines:  # its own is left to the terminal)
                assert len(line) <= self.width or not set(line) & set("│┃"), line


SCREENS = [pytest.param(80, True, id="terminal-80"), pytest.param(80, False, id="piped")]
LONG_NAME = "wine-classifier-with-a-long-experiment-name"


@pytest.fixture
def some_runs(tmp_path):
    from test_runs import make_run

    runs = tmp_path / "runs-with-a-long-folder-name"
    long_run = make_run(runs, LONG_NAME, "20261120-100000", lr=0.01, val_loss=0.0118923,
                        accuracy=0.9, test={"loss": 0.51234,
                                            "sparse_top_k_categorical_accuracy": 0.99})
    short_run = make_run(runs, "iris", "20261120-130000", status="interrupted", lr=1.0,
                         val_loss=9.0)
    return runs, long_run, short_run


@pytest.mark.parametrize(("width", "terminal"), SCREENS)
def test_runs_table_keeps_every_value_whole(cli, monkeypatch, some_runs, width,
                                            terminal) -> None:
    runs, long_run, short_run = some_runs
    screen = _Screen(monkeypatch, width, terminal)
    assert cli("runs", runs, "--sort", "val_loss").exit_code == 0
    screen.assert_whole([long_run.name, short_run.name, "loss=0.01189", "interrupted",
                         "sparse_top_k_categorical_accuracy=0.99", str(runs)])


@pytest.mark.parametrize(("width", "terminal"), SCREENS)
def test_runs_show_keeps_every_path_whole(cli, monkeypatch, some_runs, width,
                                          terminal) -> None:
    _, long_run, _ = some_runs
    screen = _Screen(monkeypatch, width, terminal)
    assert cli("runs", "show", long_run).exit_code == 0
    screen.assert_whole([str(long_run / name) for name in
                         ("config.yaml", "run.json", "metrics.json")]
                        + ["Adam(learning_rate=0.01)", "0.0119", "0.9900",
                           "sparse_top_k_categorical_accuracy", "2026-11-20T10:00:00+00:00"])


@pytest.mark.parametrize(("width", "terminal"), SCREENS)
def test_runs_compare_keeps_every_value_whole(cli, monkeypatch, some_runs, width,
                                              terminal) -> None:
    from test_runs import make_run

    runs, long_run, short_run = some_runs
    other = make_run(runs, f"{LONG_NAME}-b", "20261120-140000", lr=0.0001)
    screen = _Screen(monkeypatch, width, terminal)
    assert cli("runs", "compare", long_run, short_run, other).exit_code == 0
    alone = [re.compile(rf"(?<![/\w-]){name}(?![\w-])")  # a value, not a path's part
             for name in (LONG_NAME, f"{LONG_NAME}-b")]
    screen.assert_whole([str(long_run), str(short_run), *alone,
                         "0.01189", "0.0001",
                         "compile.optimizer.learning_rate",
                         "test.sparse_top_k_categorical_accuracy"])


@pytest.mark.parametrize(("width", "terminal"), SCREENS)
def test_sweep_table_keeps_headers_and_run_directories_whole(monkeypatch, tmp_path, width,
                                                             terminal) -> None:
    from types import SimpleNamespace

    from kerastrain.cli.sweep import _render_result
    from kerastrain.sweep.manifest import Row

    rows = [Row(str(i), {"compile.optimizer.learning_rate": lr,
                         "model.layers.0.units": units}, "completed", "trained",
                str(tmp_path / f"{LONG_NAME}-20261120-10000{i}-ab1{i}"), value, ci)
            for i, (lr, units, value, ci) in enumerate([
                ("0.001", "64", 0.123456, [0.1001, 0.1468]),
                ("0.0001", "128", 0.2345, None)])]
    sweep_dir = tmp_path / "sweeps" / f"{LONG_NAME}-0123abcd"
    planned = SimpleNamespace(rows=rows, metric="validation.loss", record={},
                              dir=SimpleNamespace(path=sweep_dir,
                                                  manifest=sweep_dir / "manifest.csv"))
    screen = _Screen(monkeypatch, width, terminal)
    _render_result(planned, False, False)
    screen.assert_whole(["learning_rate", "units", "validation.loss", "0.0001", "128",
                         "0.1235", "[0.1001,", "0.1468]", "0.2345",
                         *[row.run_dir.rsplit("/", 1)[1] for row in rows]])
