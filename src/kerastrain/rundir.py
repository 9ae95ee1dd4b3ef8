"""Run directories: created once under a unique name, written file by file atomically,
read back by `evaluate` and `predict`. Nothing here imports TensorFlow."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from kerastrain.errors import RunDirError

RUN_FILES = ("config.yaml", "run.json", "preprocessing.json", "model.keras")


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` that replaces it only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp",
                               dir=target.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; files follow the umask
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    """history.csv: `epoch` then every logged metric; epochs without a value stay empty."""
    keys = sorted(history, key=lambda k: (k.startswith("val_"), k))
    n = max((len(v) for v in history.values()), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(n):
        writer.writerow([epoch + 1] + [repr(float(history[k][epoch]))
                                       if epoch < len(history[k]) else "" for k in keys])
    write_text(path, buffer.getvalue())


def read_logged(path: Path) -> dict[str, list[float]]:
    """history.csv back as Keras's History held it: per key, only the epochs that logged it
    (the empty cells `write_history` pads with are dropped; a logged NaN stays)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return {k: [float(r[k]) for r in rows if r[k]] for k in keys}


def trained(path: Path) -> bool:
    """Whether a fold (or the run itself) finished: its metrics.json is written last,
    after model.keras."""
    return (path / "metrics.json").is_file() and (path / "model.keras").is_file()


def read_history(path: Path) -> dict[str, list[float]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return {k: [float(r[k]) if r[k] else float("nan") for r in rows] for k in keys}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunDir:
        """`<runs_dir>/<name>-<YYYYmmdd-HHMMSS>-<id>/`, made with one `mkdir` that fails
        rather than reuse a name."""
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unusable_runs_dir(runs_dir, exc) from None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            path = runs_dir / f"{name}-{stamp}-{secrets.token_hex(2)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise unusable_runs_dir(runs_dir, exc) from None
            return cls(path)
        raise RunDirError(f"{runs_dir}: could not find a free run directory name.")

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory, checked to hold what `evaluate`/`predict` need."""
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run directory.")
        if not (path / "run.json").exists():
            raise RunDirError(f"{path}: not a kerastrain run directory (no run.json).")
        run = cls(path)
        status = run.info().get("status")
        missing = [f for f in RUN_FILES if not (path / f).exists()]
        if missing and status == "completed" and run.info().get("no_model_reason"):
            raise RunDirError(f"{path}: {run.info()['no_model_reason']}")
        if missing:
            raise RunDirError(f"{path}: the run is {status!r} and has no "
                              f"{', '.join(missing)}; only completed runs can be used.")
        return run

    def info(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{self.path / 'run.json'}: unreadable: {exc}") from None

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{self.path / name}: unreadable: {exc}") from None

    def update_info(self, drop: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        """Merge `fields` into run.json, removing the keys in `drop`."""
        info = self.info() if (self.path / "run.json").exists() else {}
        for key in drop:
            info.pop(key, None)
        info.update(fields)
        write_json(self.path / "run.json", info)
        return info

    def add_notes(self, *notes: str | None) -> None:
        """Append notes (things skipped, never failures) to run.json's `notes`."""
        notes = tuple(n for n in notes if n)
        if notes:
            self.update_info(notes=[*self.info().get("notes", []), *notes])

    def write_config(self, resolved: dict[str, Any]) -> None:
        text = "# The fully resolved config of this run: `kerastrain fit` on it reproduces it.\n"
        write_text(self.path / "config.yaml",
                   text + yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))

    def sub(self, *parts: str) -> Path:
        path = self.path.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


def unusable_runs_dir(runs_dir: Path, exc: OSError) -> RunDirError:
    """The user's error for a runs_dir that cannot hold a new run (a file in the way, no
    permission, a read-only disk)."""
    what = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
        else exc.strerror or str(exc)
    return RunDirError(f"output.runs_dir {runs_dir}: cannot make a run directory there "
                       f"({what}: {exc.filename or runs_dir}). Set output.runs_dir to a "
                       "folder you can write in.")


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run under `runs_dir`, newest first: name, status, start, final metrics."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunDirError(f"{runs_dir}: no such runs directory.")
    found = []
    for path in sorted(runs_dir.iterdir(), reverse=True):
        if not (path / "run.json").is_file():
            continue
        run = RunDir(path)
        try:
            info = run.info()
            metrics = run.read_json("metrics.json") if (path / "metrics.json").exists() else {}
        except RunDirError:
            info, metrics = {"status": "unreadable"}, {}
        found.append({"run_dir": str(path), "status": info.get("status"),
                      "started_at": info.get("started_at"), "metrics": metrics})
    found.sort(key=lambda r: r["started_at"] or "", reverse=True)
    return found
