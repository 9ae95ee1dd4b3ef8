"""What the command line shows: Rich tables of metrics and the live display of a run's
training (a `Progress` drawn on stderr). The library never imports this module."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBars
from rich.table import Column, Table

from kerastrain.training.progress import Progress


def metrics_table(title: str, metrics: dict[str, dict[str, float]]) -> Table:
    """One row per split, one column per metric."""
    names = sorted({k for scores in metrics.values() for k in scores})
    table = Table(title=title)
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    for split, scores in metrics.items():
        table.add_row(split, *[f"{scores[n]:.4f}" if n in scores else "" for n in names])
    return table


def columns_table(rows: list[dict[str, Any]]) -> Table:
    """Each column the data has: its kind, encoding, input width and why (validate)."""
    keys = [k for k in ("input", "column", "kind", "encoding", "width", "why")
            if any(k in row for row in rows)]
    table = Table(title="columns")
    for key in keys:
        table.add_column(key, justify="right" if key == "width" else "left")
    for row in rows:
        table.add_row(*[str(row.get(key, "")) for key in keys])
    return table


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


class ConsoleProgress(Progress):
    """A run's progress on `console`: on a terminal one live display (a bar over the
    models to train when there are several, and one per fold over its epochs, the epoch
    counter before the logs: a narrow terminal wraps the logs, never cuts the label, the
    counter or the time); elsewhere one line per epoch. Warnings and notes are printed as
    they come."""

    def __init__(self, console: Console):
        self.console = console
        self.live = console.is_terminal
        self.bars: RichBars | None = None
        self.overall: Any = None
        self.tasks: dict[str, Any] = {}
        self.label_column = self.counter_column = Column()

    def begin(self, total: int) -> None:
        if self.live:
            self._start(total if total > 1 else None, "all")

    def _start(self, total: int | None, label: str) -> None:
        # the label, the epoch counter and the time are never cut (their widths grow with
        # what they show); the logs wrap on a narrow terminal
        self.label_column = Column(no_wrap=True, min_width=len(label))
        self.counter_column = Column(no_wrap=True, min_width=2 * len(str(total or 1)) + 1)
        self.bars = RichBars(TextColumn("[bold]{task.fields[label]}",
                                        table_column=self.label_column),
                             MofNCompleteColumn(table_column=self.counter_column),
                             BarColumn(bar_width=20),
                             TimeElapsedColumn(table_column=Column(no_wrap=True, min_width=7)),
                             TextColumn("{task.description}",
                                        table_column=Column(overflow="fold", min_width=1)),
                             console=self.console, transient=False)
        if total is not None:
            self.overall = self.bars.add_task("", total=total, label=label)
        self.bars.start()

    def fold_begin(self, label: str, epochs: int, done: int = 0) -> None:
        if self.bars is not None:
            self.label_column.min_width = max(self.label_column.min_width or 0, len(label))
            self.counter_column.min_width = max(self.counter_column.min_width or 0,
                                                2 * len(str(epochs)) + 1)
            self.tasks[label] = self.bars.add_task("", total=epochs, completed=done,
                                                   label=label)

    def epoch_end(self, label: str, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        text = "  ".join(f"{k} {_fmt(v)}" for k, v in logs.items())
        if self.bars is not None and label in self.tasks:
            self.bars.update(self.tasks[label], completed=epoch, description=text)
        else:
            self.console.print(f"{label} epoch {epoch}/{epochs}  {text}", highlight=False,
                               markup=False)

    def fold_end(self, label: str) -> None:
        if self.bars is None:
            return
        task = self.tasks.get(label)
        if task is not None:
            done = next(t.completed for t in self.bars.tasks if t.id == task)
            self.bars.update(task, total=done)  # early stopping: the bar ends full
        if self.overall is not None:
            self.bars.advance(self.overall)

    def end(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None

    def warning(self, text: str) -> None:
        self.console.print(f"warning: {text}", markup=False, highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)


class SweepProgress(ConsoleProgress):
    """A sweep's display: a bar over its trials and one bar per model training now
    (labelled by its trial, gone when it ends); a line per trial that ends; each warning
    once, however many trials give it."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.warned: set[str] = set()

    def start(self, trials: int) -> None:
        if self.live and trials:
            self._start(trials, "trials")

    def fold_end(self, label: str) -> None:
        task = self.tasks.pop(label, None)
        if self.bars is not None and task is not None:
            self.bars.remove_task(task)

    def trial_end(self, text: str) -> None:
        if self.bars is not None and self.overall is not None:
            self.bars.advance(self.overall)
        self.console.print(text, markup=False, highlight=False)

    def warning(self, text: str) -> None:
        if text not in self.warned:
            self.warned.add(text)
            super().warning(text)

    def stop(self) -> None:
        super().end()
