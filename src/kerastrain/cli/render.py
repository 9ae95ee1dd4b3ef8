"""What the command line shows: Rich tables (every one printed through `show`) and the
live display of a run's training (a `Progress` drawn on stderr). The library never imports
this module."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBars
from rich.table import Column, Table
from rich.text import Text

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


def show(console: Console, table: Table) -> None:
    """Print `table` so that no value in it is cut or broken. To a pipe or a file: at its
    natural width, whatever the console's (nothing wraps). On a terminal too narrow for
    it: cells wrap between words (values), each column at least as wide as its longest
    word; narrower still, one `header: value` line per cell. The title and caption are
    lines of their own, never wrapped into the table's width."""
    title, caption = table.title, table.caption
    table.title = table.caption = None
    if title is not None:
        console.print(title, markup=False, soft_wrap=True)
    columns = [_measure(console, column) for column in table.columns]
    natural = Measurement.get(console, console.options.update_width(1 << 20), table)
    overhead = natural.maximum - sum(m.maximum for m in columns)  # borders and padding
    room = console.width - overhead
    if not console.is_terminal:
        Console(file=console.file, width=natural.maximum, highlight=False,
                color_system=None).print(table)
    elif sum(m.maximum for m in columns) <= room:
        console.print(table)
    elif sum(m.minimum for m in columns) <= room:
        for column, width in zip(table.columns, _widths(columns, room), strict=True):
            column.width = width
        console.print(table)
    else:
        _records(console, table)
    if caption is not None:
        console.print(caption, markup=False, soft_wrap=True)


def _measure(console: Console, column: Column) -> Measurement:
    """A column's content: its longest word (minimum; its longest line where it never
    wraps) and its longest line (maximum)."""
    options = console.options.update_width(1 << 20)
    found = [Measurement.get(console, options, cell) for cell in [column.header, *column.cells]]
    longest = max((m.maximum for m in found), default=1)
    return Measurement(longest if column.no_wrap else max((m.minimum for m in found),
                                                          default=1), longest)


def _widths(columns: list[Measurement], room: int) -> list[int]:
    """Column widths that fill `room`: each column its longest word, then the space left
    shared one character at a time among the columns that would still wrap."""
    widths = [m.minimum for m in columns]
    spare = room - sum(widths)
    while spare > 0:
        wanting = [i for i, m in enumerate(columns) if widths[i] < m.maximum]
        if not wanting:
            break
        for i in wanting[:spare]:
            widths[i] += 1
        spare -= len(wanting[:spare])
    return widths


def _records(console: Console, table: Table) -> None:
    """A table too wide for the terminal, row after row: `header: value` lines with a
    blank line between rows; a table without headers (keys and values) one `key: value`
    line per row."""
    rows = zip(*[[_plain(cell) for cell in column.cells] for column in table.columns],
               strict=True)
    for i, row in enumerate(rows):
        if table.show_header:
            pairs = [(_plain(c.header), value) for c, value in zip(table.columns, row,
                                                                   strict=True)]
            if i:
                console.print()
        else:
            pairs = [(row[0], " ".join(v for v in row[1:] if v))]
        for label, value in pairs:
            lines = value.splitlines() or [""]
            console.print(f"{label}: {lines[0]}", markup=False, soft_wrap=True)
            for line in lines[1:]:
                console.print(" " * (len(label) + 2) + line, markup=False, soft_wrap=True)


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


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
