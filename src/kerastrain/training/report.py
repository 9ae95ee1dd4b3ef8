"""What a person reads after a run: the model summary with final metrics, learning curves."""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kerastrain import _keras
from kerastrain.config import LoadedConfig
from kerastrain.rundir import RunDir


def summary_text(model: Any, metrics: dict[str, dict[str, float]]) -> str:
    """Keras's model summary followed by the final metrics of each split."""
    lines: list[str] = []
    wide = type(model).__name__ != "Sequential"  # a graph's summary has a "Connected to" column
    width = 130 if wide else 100
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)  # Keras's Rich console: not the terminal's width
    try:
        model.summary(print_fn=lambda text, *args, **kwargs: lines.append(text),
                      line_length=width)
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    lines.append("")
    lines.append("Final metrics")
    for split, scores in metrics.items():
        shown = "  ".join(f"{k}={v:.6g}" for k, v in scores.items())
        lines.append(f"  {split:<12}{shown}")
    return "\n".join(lines) + "\n"


def plot_history(history: dict[str, list[float]], path: Path,
                 title: str = "learning curves") -> str | None:
    """One panel per metric: training, validation (`val_`) and, under cross-validation
    with an inner split, the scored rows' (`heldout_`) curves; a note if it cannot plot.
    Drawn on a `Figure` of its own, without pyplot's global state: it may run in a thread
    beside the rest of the run (`plot_beside`)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install 'kerastrain[plots]')."
    bases = [k for k in history if not k.startswith(("val_", "heldout_"))
             and k not in ("learning_rate", "folds")]
    if not bases:
        return None
    fig = Figure(figsize=(4.5 * len(bases), 3.6))
    axes = fig.subplots(1, len(bases), squeeze=False)
    for ax, key in zip(axes[0], bases, strict=True):
        for name, style in ((key, "-"), (f"val_{key}", "--"), (f"heldout_{key}", ":")):
            values = history.get(name)
            if values:
                epochs = [i + 1 for i, v in enumerate(values) if not math.isnan(v)]
                ax.plot(epochs, [v for v in values if not math.isnan(v)], style, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except Exception as exc:  # optional output: a note, never a failed run
        return f"plots skipped: {type(exc).__name__}: {exc}"
    finally:
        if path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()  # no empty plots/ left behind
    return None


@contextlib.contextmanager
def plot_beside(history: dict[str, list[float]] | None, path: Path, notes: list[str | None],
                title: str = "learning curves") -> Iterator[None]:
    """`plot_history` in a thread while the body runs (scoring and saving the model), its
    note appended to `notes` on leaving; nothing when `history` is None (no plots). The
    drawing is mostly importing matplotlib: beside TensorFlow's work it costs little wall
    time."""
    if history is None:
        yield
        return
    with ThreadPoolExecutor(1, thread_name_prefix="kerastrain-plot") as background:
        plotted = background.submit(plot_history, history, path, title)
        yield
    notes.append(plotted.result())


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def cv_table(summary: dict[str, Any]) -> Table:
    """Every metric per fold, then its mean, sample std and 95% confidence interval: the
    one drawing of a cross-validation summary (the terminal's, and summary.txt's)."""
    metrics = summary["metrics"]
    names = list(metrics)
    table = Table(title=f"cross-validation: {summary['splitter']}")
    table.add_column("fold")
    for name in names:
        table.add_column(name, justify="right")
    for fold in summary["folds"]:
        table.add_row(fold, *[_number(metrics[n]["per_fold"].get(fold)) for n in names])
    table.add_section()
    for row in ("mean", "std"):
        table.add_row(row, *[_number(metrics[n][row]) for n in names])
    table.add_row("95% CI", *["" if metrics[n]["ci95"] is None else
                              f"{metrics[n]['ci95'][0]:.4f} .. {metrics[n]['ci95'][1]:.4f}"
                              + ("*" if metrics[n].get("ci95_clipped") else "")
                              for n in names])
    return table


def cv_text(summary: dict[str, Any]) -> str:
    """The cross-validation summary as plain text for summary.txt: `cv_table`, where the
    folds were scored and steered, and what the interval means."""
    console = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    console.print(cv_table(summary))
    table = "\n".join(line.rstrip() for line in console.export_text().splitlines())
    return (f"\n{table}\n  scored on {summary['scored_on']}; steered on "
            f"{summary['steered_on']}\n  {summary['note']}\n")


def plot_graph(model: Any, path: Path) -> str | None:
    """The model's graph as a picture (Keras's `plot_model`); a note when pydot or Graphviz
    is missing, never a failure: the picture is optional."""
    try:
        _keras.keras().utils.plot_model(model, to_file=str(path), show_shapes=True,
                                        show_layer_names=True)
    except Exception as exc:  # ImportError without pydot/Graphviz, OSError without `dot`
        first = " ".join(str(exc).split())[:200]
        return (f"model.png skipped: {type(exc).__name__}: {first} (optional: pip install "
                "pydot and install Graphviz; see docs/graph_models.md).")
    return None if path.exists() else "model.png skipped: plot_model wrote no file."


def record_model(run: RunDir, loaded: LoadedConfig, model: Any) -> list[str | None]:
    """For graph models, model.png; for configs with plugins, the folder they were imported
    from (run.json `plugin_path`), searched again by `evaluate` and `predict`. Returns notes."""
    cfg = loaded.config
    if cfg.plugins:
        run.update_info(plugin_path=list(cfg.plugin_path or []))
    if not cfg.model.is_graph:
        return []
    return [plot_graph(model, run.model_png)]
