"""Run directories: their layout (every file's name is here and nowhere else), created once
under a unique name, written file by file atomically, read back by `evaluate`, `predict`,
`resume` and `runs`. Nothing here imports TensorFlow."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
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

History = dict[str, list[float]]  # per logged quantity, one value per epoch (NaN: not logged)
SWEEP_FILE, MANIFEST_FILE = "sweep.json", "manifest.csv"  # a sweep directory's two files


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
        with open(tmp_path, "rb") as written:  # on disk before it takes the name
            os.fsync(written.fileno())
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


def read_json(path: Path) -> Any:
    """A JSON file of a run; a `RunDirError` naming it when it is missing or broken."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: unreadable: {exc}") from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_history(path: Path, history: History) -> None:
    """history.csv: `epoch` then every logged quantity (`val_*` last); an epoch that did
    not log a quantity (validation every `validation_freq` epochs) has an empty cell."""
    keys = sorted(history, key=lambda k: (k.startswith("val_"), k))
    n = max((len(v) for v in history.values()), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch in range(n):
        values = [history[k][epoch] if epoch < len(history[k]) else math.nan for k in keys]
        writer.writerow([epoch + 1] + ["" if math.isnan(v) else repr(float(v)) for v in values])
    write_text(path, buffer.getvalue())


def read_history(path: Path) -> History:
    """history.csv back: one value per epoch for every quantity, NaN where it is empty."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    return {k: [float(r[k]) if r[k] else math.nan for r in rows] for k in keys}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunDir:
    """A run directory, or one fold's folder inside it (`fold(name)`): both keep a trained
    model's files under the same names."""

    path: Path

    # -- the layout ----------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def info_file(self) -> Path:
        return self.path / "run.json"

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def preprocessing(self) -> Path:
        return self.path / "preprocessing.json"

    @property
    def summary(self) -> Path:
        return self.path / "summary.txt"

    @property
    def splits(self) -> Path:
        return self.path / "splits.json"

    @property
    def cv_summary(self) -> Path:
        return self.path / "cv_summary.json"

    @property
    def cv_history(self) -> Path:
        return self.path / "cv_history.csv"

    @property
    def model_png(self) -> Path:
        return self.path / "model.png"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def backup(self) -> Path:
        """Keras's BackupAndRestore folder and kerastrain's state beside it (resume)."""
        return self.checkpoints / "backup"

    @property
    def backup_file(self) -> Path:
        return self.backup / "backup.npz"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def learning_curves(self) -> Path:
        return self.path / "plots" / "learning_curves.png"

    def fold(self, name: str) -> RunDir:
        """The folder of one cross-validation fold, `folds/<repeat>-<fold>/`."""
        return RunDir(self.path / "folds" / name)

    # -- reading and writing ---------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for as long as this process trains it: a second process that wants
        to train it (two `resume`s at once) is refused. The operating system releases
        the lock of a process that dies, however it dies."""
        path = self.path / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunDirError(f"{self.path}: another kerastrain process (pid {holder}) is "
                              "training this run now. Wait for it to end, or stop it (Ctrl-C "
                              "keeps its work) and resume then.") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    @property
    def trained(self) -> bool:
        """Whether this model's files are complete: metrics.json is written last, after
        model.keras."""
        return self.metrics.is_file() and self.model.is_file()

    def info(self) -> dict[str, Any]:
        return read_json(self.info_file)

    def update_info(self, drop: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
        """Merge `fields` into run.json, removing the keys in `drop`."""
        info = self.info() if self.info_file.exists() else {}
        for key in drop:
            info.pop(key, None)
        info.update(fields)
        write_json(self.info_file, info)
        return info

    def add_notes(self, *notes: str | None) -> None:
        """Append notes (things skipped, never failures) to run.json's `notes`."""
        notes = tuple(n for n in notes if n)
        if notes:
            self.update_info(notes=[*self.info().get("notes", []), *notes])

    def write_config(self, resolved: dict[str, Any]) -> None:
        text = "# The fully resolved config of this run: `kerastrain fit` on it reproduces it.\n"
        write_text(self.config, text + yaml.safe_dump(resolved, sort_keys=False,
                                                      allow_unicode=True))

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunDir:
        """`<runs_dir>/<name>-<YYYYmmdd-HHMMSS>-<id>/`, made with one `mkdir` that fails
        rather than reuse a name."""
        if Path(name).name != name or name in ("", ".", ".."):  # never a path out of runs_dir
            raise RunDirError(f"{name!r}: a run's name is one folder name, never a path.")
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
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunDirError(f"{run.path}: no such run directory.")
        if not run.info_file.exists():
            raise RunDirError(f"{run.path}: not a kerastrain run directory (no run.json).")
        info = run.info()
        status = info.get("status")
        needed = (run.config, run.info_file, run.preprocessing, run.model)
        missing = [p.name for p in needed if not p.exists()]
        if missing and status == "completed" and info.get("no_model_reason"):
            raise RunDirError(f"{run.path}: {info['no_model_reason']}")
        if status != "completed":
            raise RunDirError.not_completed(run.path, info)
        if missing:
            raise RunDirError(f"{run.path}: the run is {status!r} and has no "
                              f"{', '.join(missing)}; only completed runs can be used.")
        return run


def unusable_runs_dir(runs_dir: Path, exc: OSError) -> RunDirError:
    """The user's error for a runs_dir that cannot hold a new run (a file in the way, no
    permission, a read-only disk)."""
    what = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
        else exc.strerror or str(exc)
    return RunDirError(f"output.runs_dir {runs_dir}: cannot make a run directory there "
                       f"({what}: {exc.filename or runs_dir}). Set output.runs_dir to a "
                       "folder you can write in.")
