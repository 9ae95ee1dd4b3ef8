"""The run's optional pictures: a failure is a note, never a failed run, and leaves no
empty folder."""

from __future__ import annotations

from pathlib import Path

from kerastrain.training.report import plot_history


def test_a_plot_that_cannot_be_saved_is_a_note_and_leaves_no_folder(tmp_path: Path) -> None:
    path = tmp_path / "plots" / "learning_curves.unknown-format"
    note = plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, path)
    assert note is not None and note.startswith("plots skipped: ValueError")
    assert not (tmp_path / "plots").exists()


def test_plots_are_saved(tmp_path: Path) -> None:
    path = tmp_path / "plots" / "learning_curves.png"
    assert plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, path) is None
    assert path.is_file()
