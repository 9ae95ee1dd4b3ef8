"""What a run reports while it trains. `fit` and `resume` take a `Progress`; the library's
own does nothing, and the command line passes one that draws it. Every event carries
plain values only, so events from folds trained in other processes can be forwarded."""

from __future__ import annotations


class Progress:
    """The events of a run, in order: `begin`, then per fold (or the hold-out, or the
    refit) `fold_begin`, `epoch_end` per epoch and `fold_end`; `end` last. `warning` and
    `note` may come at any time."""

    def begin(self, total: int) -> None:
        """`total` models will be trained (folds, and the refit)."""

    def fold_begin(self, label: str, epochs: int, done: int = 0) -> None:
        """Training of `label` starts (at epoch `done`, when resumed)."""

    def epoch_end(self, label: str, epoch: int, epochs: int, logs: dict[str, float]) -> None:
        """Epoch `epoch` (1-based) of `epochs` ended with these logs."""

    def fold_end(self, label: str) -> None:
        """`label` is trained (or was trained before a resume)."""

    def end(self) -> None:
        """No more events."""

    def warning(self, text: str) -> None:
        """Something the user should know before trusting the results."""

    def note(self, text: str) -> None:
        """Information: where a resumed run continues."""

    def trial_end(self, text: str) -> None:
        """A sweep's trial ended, as `text` says (`t003 pruned after epoch 4`)."""
