"""What the command line draws, at the width of a small terminal: nothing a user needs
(the fold, the epoch counter) is ever cut."""

from __future__ import annotations

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
