"""The user-input boundary, as a battery of broken inputs: configs, `--set` overrides, data
files, and the inputs and outputs of `evaluate` and `predict`.

Every case must end in exit code 2 with one message that names the file (and its line,
row or column where there is one), no traceback, and nothing left behind: no run
directory, no output file, no temporary file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from conftest import Cli, iris_config, write_config
from kerastrain.rundir import atomic_path, current_umask, write_text
from test_config import INVALID, expectation

IRIS_FEATURES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                 "petal width (cm)")


def refused(result, *texts: str) -> None:
    """Exit 2, every text in the one message on stderr, no traceback, nothing on stdout."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for text in texts:
        assert text in result.stderr, f"{text!r} not in:\n{result.stderr}"


def contents(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


# -- broken config files: every fixture of tests/configs/invalid ------------------------------

@pytest.mark.parametrize("fixture", INVALID, ids=[p.stem for p in INVALID])
def test_broken_config_fit_creates_nothing(cli: Cli, fixture: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`fit` makes every check `validate` makes (tests/test_config.py runs `validate` on the
    same fixtures) before it creates anything: the message, its line, and no run."""
    line, message = expectation(fixture)
    monkeypatch.chdir(tmp_path)
    before = contents(fixture.parent.parent.parent)
    result = cli("fit", fixture, "--set", f"output.runs_dir={tmp_path / 'runs'}")
    refused(result, f"{fixture}:{line}  ", message)
    assert list(tmp_path.iterdir()) == []
    assert contents(fixture.parent.parent.parent) == before


# -- hostile YAML -----------------------------------------------------------------------------

GOOD_TAIL = """\
data:
  source: {type: sklearn, name: iris}
  target: target
model:
  layers:
    - {type: Dense, units: 3, activation: softmax}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
"""

HOSTILE_YAML = {
    "python_apply_tag": ("name: !!python/object/apply:os.system ['echo pwned']\n", 1,
                         "name: unsafe tag refused: !!python/object/apply:os.system"),
    "python_name_tag": ("name: bad\nseed: !!python/name:os.system ''\n", 2,
                        "seed: unsafe tag refused: !!python/name:os.system"),
    "python_tag_in_list": ("name: bad\ncallbacks:\n  - !!python/object:os.Foo {a: 1}\n", 3,
                           "callbacks.0: unsafe tag refused: !!python/object:os.Foo"),
    "python_tag_on_key": ("name: bad\n!!python/str seed: 1\n", 2, "unsafe tag refused"),
    "python_tag_in_set": ("name: bad\nplugins: !!set {? !!python/object:os.Foo x}\n", 2,
                          "plugins: unsafe tag refused: !!python/object:os.Foo"),
    "unknown_tag": ("name: !shout bad\n", 1, "name: unknown tag refused: !shout"),
    "alias_loop": ("name: bad\nplugins: &loop [x, *loop]\n", 2,
                   "YAML aliases here refer to themselves"),
    "alias_bomb": ("name: bad\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10) if i else 'x'}]\n" for i in range(7)),
        2, "expand to more than 100000 keys and items"),
}


@pytest.mark.parametrize("case", HOSTILE_YAML, ids=list(HOSTILE_YAML))
def test_hostile_yaml_is_refused_at_its_line(cli: Cli, tmp_path: Path, case: str) -> None:
    text, line, message = HOSTILE_YAML[case]
    path = tmp_path / "hostile.yaml"
    path.write_text(text + GOOD_TAIL)
    result = cli("validate", path)
    refused(result, f"{path}:{line}  ", message)
    assert not (tmp_path / "pwned").exists()


def test_python_tag_never_runs(cli: Cli, tmp_path: Path, monkeypatch) -> None:
    """The tag would create a file if it were constructed."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch made']\n" + GOOD_TAIL)
    refused(cli("fit", path), "unsafe tag refused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize("content, message", [
    (b"", "name: the required key 'name' is missing."),
    (b"- a\n- list\n", "the config must be a mapping of sections"),
    (b"name: caf\xe9\n", "cannot read the config"),
], ids=["empty", "a_list", "not_utf8"])
def test_unusable_config_file(cli: Cli, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    refused(cli("validate", path), str(path), message)


# -- --set overrides --------------------------------------------------------------------------

SET_CASES = {
    "unknown_argument_below_an_item": ("model.layers.0.foo.bar=1",
                                       "model.layers.0.foo: Dense takes no argument 'foo'"),
    "section_replaced_by_a_number": ("training=5", "training: Input should be a valid dict"),
    "unknown_key_below_a_new_key": ("training.foo.bar=1", "training.foo: unknown key 'foo'"),
    "item_of_a_missing_list": ("callbacks.0.type=EarlyStopping",
                               "callbacks: Input should be a valid list"),
    "replaced_list_with_a_bad_item": ("model.layers=[{type: Dens}]",
                                      "model.layers.0.type: unknown layer 'Dens'"),
    "python_tag": ("name=!!python/object/apply:os.system [ls]", "name: unsafe tag refused"),
    "no_equals": ("training.epochs", "expected KEY=VALUE"),
    "bad_yaml_value": ("training.epochs=[1", "is not valid YAML"),
    "past_the_end": ("model.layers.5.units=3", "index 5 is past the end of a list of 1 items"),
    "below_a_value": ("model.layers.0.units.x=1", "model.layers.0.units is a value"),
    "name_in_a_list": ("model.layers.first=1", "this is a list: give an item's index"),
    "wrong_type": ("training.epochs=many", "training.epochs: Input should be a valid integer"),
    "missing_data_file": ("data.source={type: csv, path: nope.csv}", "nope.csv: no such data"),
    "long_delimiter": ("data.source={type: csv, path: x.csv, delimiter: ';;'}",
                       "data.source.delimiter: String should have at most 1 character"),
}


@pytest.mark.parametrize("case", SET_CASES, ids=list(SET_CASES))
def test_broken_override_names_the_override(cli: Cli, tmp_path: Path, case: str) -> None:
    override, message = SET_CASES[case]
    config = iris_config(tmp_path / "runs")
    config["model"]["layers"] = [{"type": "Dense", "units": 3, "activation": "softmax"}]
    path = write_config(tmp_path / "c.yaml", config)
    result = cli("validate", path, "--set", override)
    where = "--set" if case == "no_equals" else f"--set {override}  "
    refused(result, where, message)
    assert f"{path}:" not in result.stderr


# -- data files named by a config -------------------------------------------------------------

DATA_CONFIG = """\
name: boundary
seed: 0
data:
  source:
    {source}
  target: label
model:
  layers:
    - {{type: Dense, units: 2, activation: softmax}}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
output:
  runs_dir: {runs}
"""
SOURCE_LINE = 5


def rows_csv(*lines: str) -> bytes:
    header = "x,y,label"
    body = lines or tuple(f"{i / 10},{i % 3},{'ab'[i % 2]}" for i in range(12))
    return ("\n".join((header, *body)) + "\n").encode()


def some_rows(bad: str, at: int = 1) -> bytes:
    """Twelve good rows with `bad` (a whole line) in place of row `at` (0-based)."""
    lines = [f"{i / 10},{i % 3},{'ab'[i % 2]}" for i in range(12)]
    lines[at] = bad
    return rows_csv(*lines)


def npz_bytes(tmp_path: Path, **arrays: np.ndarray) -> bytes:
    np.savez(tmp_path / "made.npz", **arrays)
    data = (tmp_path / "made.npz").read_bytes()
    (tmp_path / "made.npz").unlink()
    return data


X12 = np.arange(24, dtype=np.float64).reshape(12, 2)
LABELS = np.array(["a", "b"] * 6)

# name: (file name, content (bytes, or a function of tmp_path), expected texts,
#        whether the message carries the config line of data.source.path)
DATA_CASES = {
    "empty_csv": ("d.csv", b"", ["the file is empty"], True),
    "header_only": ("d.csv", b"x,y,label\n", ["has a header line but no rows"], True),
    "semicolons": ("d.csv", b"x;y;label\n1;2;a\n3;4;b\n",
                   ["looks separated by ';'", "data.source.delimiter: ';'"], True),
    "binary_garbage": ("d.csv", bytes(range(256)) * 4, ["is a binary file, not CSV"], True),
    "latin1": ("d.csv", b"x,y,label\n0.1,1,a\n0.2,2,caf\xe9\n",
               ["line 3 is not UTF-8 text (byte 0xe9)"], True),
    "ragged_line": ("d.csv", some_rows("0.5,1", at=2), ["line 4 has 2 fields"], True),
    "duplicate_column": ("d.csv", b"x,x,label\n1,2,a\n3,4,b\n",
                         ["line 1: the column name(s) x appear twice"], True),
    "unnamed_column": ("d.csv", b"x,,label\n1,2,a\n3,4,b\n",
                       ["column 2 of the header has no name"], True),
    "missing_file": (None, None, ["data.source.path:", "no such data file"], True),
    "inf": ("d.csv", some_rows("inf,1,a", at=3),
            ["column 'x' holds an infinite value at row 4 (line 5)"], False),
    "minus_inf": ("d.csv", some_rows("0.3,-Infinity,b", at=5),
                  ["column 'y' holds an infinite value at row 6 (line 7)"], False),
    "text_in_numbers": ("d.csv", some_rows("abc,1,a", at=4),
                        ["column 'x' is numeric but row 5 (line 6) holds 'abc'"], False),
    "npz_ragged": ("d.npz", lambda tmp: npz_bytes(tmp, x=X12, label=LABELS[:10]),
                   ["columns have different numbers of rows"], True),
    "npz_scalar": ("d.npz", lambda tmp: npz_bytes(tmp, x=X12, label=LABELS, w=np.array(1.0)),
                   ["array 'w' is a single value (0-d)"], True),
    "npz_nan": ("d.npz", lambda tmp: npz_bytes(tmp, x=np.where(X12 == 7, np.nan, X12),
                                               label=LABELS),
                ["column 'x' has a missing value at row 3"], False),
    "npz_inf": ("d.npz", lambda tmp: npz_bytes(tmp, x=np.where(X12 == 9, np.inf, X12),
                                               label=LABELS),
                ["column 'x' holds an infinite value at row 4"], False),
    "npz_garbage": ("d.npz", b"this is not an archive",
                    ["not a readable NPZ archive", "pickled objects are never loaded"], True),
    "npz_truncated": ("d.npz", lambda tmp: npz_bytes(tmp, x=X12, label=LABELS)[:60],
                      ["not a readable NPZ archive"], True),
    "npz_empty": ("d.npz", lambda tmp: npz_bytes(tmp), ["the archive holds no arrays"], True),
    "parquet_garbage": ("d.parquet", b"PAR1 not really", ["cannot read it as Parquet"], True),
}
SOURCE_TYPES = {".csv": "csv", ".npz": "npz", ".parquet": "parquet"}


@pytest.mark.parametrize("case", DATA_CASES, ids=list(DATA_CASES))
def test_broken_data_file(cli: Cli, tmp_path: Path, case: str) -> None:
    name, content, texts, at_source = DATA_CASES[case]
    data = tmp_path / (name or "absent.csv")
    if content is not None:
        data.write_bytes(content(tmp_path) if callable(content) else content)
    source = f"{{type: {SOURCE_TYPES[data.suffix]}, path: {data.name}}}"
    config = tmp_path / "c.yaml"
    config.write_text(DATA_CONFIG.format(source=source, runs=tmp_path / "runs"))
    result = cli("fit" if case in ("missing_file", "inf", "npz_ragged") else "validate", config)
    refused(result, str(data), *texts)
    if at_source:
        assert f"{config}:{SOURCE_LINE}  data.source.path: " in result.stderr
    assert not (tmp_path / "runs").exists()


def test_npy_target_file_is_named_at_its_key(cli: Cli, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X12)
    config = tmp_path / "c.yaml"
    source = "{type: npy, path: x.npy, target_path: y.npy}"
    config.write_text(DATA_CONFIG.format(source=source, runs=tmp_path / "runs")
                      .replace("target: label", "target: target"))
    refused(cli("validate", config), f"{config}:{SOURCE_LINE}  data.source.target_path: ",
            "y.npy: no such data file")


def test_npy_of_other_length_than_its_target(cli: Cli, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X12)
    np.save(tmp_path / "y.npy", np.arange(5))
    config = tmp_path / "c.yaml"
    source = "{type: npy, path: x.npy, target_path: y.npy}"
    config.write_text(DATA_CONFIG.format(source=source, runs=tmp_path / "runs")
                      .replace("target: label", "target: target"))
    refused(cli("validate", config), "columns have different numbers of rows")


# -- evaluate --data and predict inputs -------------------------------------------------------

def iris_rows(*, target: bool = True, bad: dict[str, str] | None = None, at: int = 1) -> str:
    """Five iris-like rows; `bad` replaces the values of some columns in row `at`."""
    names = [*IRIS_FEATURES, *(["target"] if target else [])]
    rows = []
    for i in range(5):
        values = {n: f"{5.0 + i / 10:.1f}" for n in IRIS_FEATURES}
        if target:
            values["target"] = ("setosa", "versicolor", "virginica")[i % 3]
        if i == at and bad:
            values.update(bad)
        rows.append(",".join(values[n] for n in names))
    return ",".join(names) + "\n" + "\n".join(rows) + "\n"


SEPAL = "'sepal length (cm)'"
EVALUATE_CASES = {
    "inf": (iris_rows(bad={"sepal width (cm)": "inf"}, at=3),
            ["column 'sepal width (cm)' holds an infinite value at row 4 (line 5)"]),
    "unseen_label": (iris_rows(bad={"target": "rose"}, at=1),
                     ["the label 'rose'", "not among the classes"]),
    "no_target_column": (iris_rows(target=False),
                         ["no column (the model was trained with it) 'target'"]),
    "header_only": (",".join(IRIS_FEATURES) + ",target\n", ["has a header line but no rows"]),
    "semicolons": (iris_rows().replace(",", ";"), ["looks separated by ';'"]),
}


@pytest.mark.parametrize("case", EVALUATE_CASES, ids=list(EVALUATE_CASES))
def test_evaluate_checks_the_data_values(cli: Cli, iris_run: Path, tmp_path: Path,
                                         case: str) -> None:
    text, texts = EVALUATE_CASES[case]
    data = tmp_path / "rows.csv"
    data.write_text(text)
    refused(cli("evaluate", iris_run, "--data", data), str(data), *texts)


@pytest.mark.parametrize("name, content, message", [
    ("rows.txt", b"a,b\n1,2\n", "unknown data file type '.txt'"),
    ("absent.csv", None, "no such data file"),
    ("rows.csv", bytes(range(256)), "is a binary file"),
], ids=["unknown_type", "missing_file", "binary"])
def test_evaluate_unusable_data_file(cli: Cli, iris_run: Path, tmp_path: Path, name: str,
                                     content: bytes | None, message: str) -> None:
    data = tmp_path / name
    if content is not None:
        data.write_bytes(content)
    refused(cli("evaluate", iris_run, "--data", data), str(data), message)


PREDICT_CASES = {
    "inf": (iris_rows(target=False, bad={"sepal length (cm)": "-inf"}, at=4),
            [f"column {SEPAL} holds an infinite value at row 5 (line 6)"]),
    "missing_column": ("sepal length (cm)\n5.1\n", ["no column (the model was trained with "
                                                    "it) 'sepal width (cm)'"]),
    "semicolons": (iris_rows(target=False).replace(",", ";"), ["looks separated by ';'"]),
    "empty": ("", ["the file is empty"]),
}


@pytest.mark.parametrize("case", PREDICT_CASES, ids=list(PREDICT_CASES))
def test_predict_checks_the_input_and_writes_nothing(cli: Cli, iris_run: Path, tmp_path: Path,
                                                     case: str) -> None:
    text, texts = PREDICT_CASES[case]
    data = tmp_path / "rows.csv"
    data.write_text(text)
    refused(cli("predict", iris_run, data, "--output", tmp_path / "out" / "p.csv"),
            str(data), *texts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_predict_refuses_a_wrong_npz_array(cli: Cli, iris_run: Path, tmp_path: Path) -> None:
    arrays = {n: np.ones(4) for n in IRIS_FEATURES}
    arrays["petal width (cm)"] = np.ones((4, 2))
    np.savez(tmp_path / "rows.npz", **arrays)
    refused(cli("predict", iris_run, tmp_path / "rows.npz", "--output", tmp_path / "p.csv"),
            "column 'petal width (cm)' holds arrays of shape [2] per row")
    assert not (tmp_path / "p.csv").exists()


def test_predict_refuses_an_npz_without_rows(cli: Cli, iris_run: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "rows.npz", **{n: np.float64(1.0) for n in IRIS_FEATURES})
    refused(cli("predict", iris_run, tmp_path / "rows.npz", "--output", tmp_path / "p.csv"),
            "is a single value (0-d)")
    assert not (tmp_path / "p.csv").exists()


def output_in_the_way(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("x\n")
    return tmp_path / "afile" / "p.csv"


@pytest.mark.parametrize("make_output, message", [
    (lambda tmp: tmp / "p.txt", "predictions are written as .csv, .npz or .parquet"),
    (lambda tmp: tmp / "p", "predictions are written as .csv, .npz or .parquet"),
    (lambda tmp: (tmp / "folder.csv").mkdir() or tmp / "folder.csv", "is a directory"),
    (output_in_the_way, "afile is a file, so no folder can be made there"),
], ids=["bad_extension", "no_extension", "a_directory", "under_a_file"])
def test_predict_refuses_an_unusable_output(cli: Cli, iris_run: Path, tmp_path: Path,
                                            make_output, message: str) -> None:
    data = tmp_path / "rows.csv"
    data.write_text(iris_rows(target=False))
    output = make_output(tmp_path)
    before = contents(tmp_path)
    result = cli("predict", iris_run, data, "--output", output, "--overwrite")
    refused(result, str(output), message)
    assert contents(tmp_path) == before


def read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`folder` made read-only (0o500), and refused to this process as the kernel refuses
    it to a user who is not root. Root writes in any folder, and CI runs as root: so the
    calls of `os` that ask for or make something in the folder (`access`, `mkdir`, `open`
    with `O_CREAT`) answer here as they would for another user; for one, they answer as
    the kernel does anyway."""
    folder.chmod(0o500)
    real_access, real_mkdir, real_open = os.access, os.mkdir, os.open
    locked = folder.resolve()

    def denied(path) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    def access(path, mode, *args, **kwargs) -> bool:
        if Path(os.fsdecode(path)).resolve() == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    def mkdir(path, *args, **kwargs) -> None:
        if Path(os.fsdecode(path)).resolve().parent == locked:
            raise denied(path)
        real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs) -> int:
        if flags & os.O_CREAT and Path(os.fsdecode(path)).resolve().parent == locked:
            raise denied(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


def test_predict_refuses_a_read_only_folder(cli: Cli, iris_run: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "rows.csv"
    data.write_text(iris_rows(target=False))
    locked = tmp_path / "locked"
    locked.mkdir()
    try:
        with monkeypatch.context() as patch:
            read_only(locked, patch)
            result = cli("predict", iris_run, data, "--output", locked / "p.csv")
        refused(result, f"{locked / 'p.csv'}: {locked} is not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.fixture(scope="module")
def colors_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with a categorical feature ('color': blue, red), trained for one epoch."""
    tmp = tmp_path_factory.mktemp("colors_run")
    rng = np.random.default_rng(0)
    lines = ["size,color,label"]
    for i in range(40):
        color = ("red", "blue")[i % 2]
        lines.append(f"{rng.normal():.3f},{color},{'warm' if color == 'red' else 'cold'}")
    (tmp / "rows.csv").write_text("\n".join(lines) + "\n")
    config = iris_config(tmp / "runs", name="colors")
    config["data"] = {"source": {"type": "csv", "path": "rows.csv"}, "target": "label"}
    config["model"] = {"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]}
    config["training"] = {"epochs": 1}
    config["output"]["plots"] = False
    result = Cli()("fit", write_config(tmp / "c.yaml", config), "--json")
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_unseen_category_is_counted_and_said_not_refused(cli: Cli, colors_run: Path,
                                                        tmp_path: Path, command: str) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("size,color,label\n0.1,red,warm\n0.2,green,cold\n0.3,,cold\n")
    output = tmp_path / "p.csv"
    args = [data, "--output", output] if command == "predict" else ["--data", data]
    result = cli(command, colors_run, *args)
    assert result.exit_code == 0, result.output
    assert "column 'color': 2 rows hold values never kept in training ((missing), " \
           "'green'): they count as 'blue' (0)" in result.output
    assert output.exists() == (command == "predict")


# -- output.runs_dir ---------------------------------------------------------------------------

def _in_the_way(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("x\n")
    return tmp_path / "afile"


@pytest.mark.parametrize("make_runs_dir", [
    _in_the_way, lambda tmp: _in_the_way(tmp) / "runs",
], ids=["a_file", "below_a_file"])
def test_unusable_runs_dir(cli: Cli, tmp_path: Path, make_runs_dir) -> None:
    runs_dir = make_runs_dir(tmp_path)
    config = iris_config(runs_dir)
    config["training"]["epochs"] = 1
    before = contents(tmp_path)
    path = write_config(tmp_path / "c.yaml", config)
    line = path.read_text().splitlines().index(f"  runs_dir: {runs_dir}") + 1
    refused(cli("fit", path), f"{path}:{line}  output.runs_dir: {runs_dir}: cannot make a run "
            "directory there", "a file is in the way")
    assert contents(tmp_path) == before | {tmp_path / "c.yaml"}


def test_read_only_runs_dir(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    try:
        config = iris_config(runs_dir)
        config["training"]["epochs"] = 1
        path = write_config(tmp_path / "c.yaml", config)
        with monkeypatch.context() as patch:
            read_only(runs_dir, patch)
            result = cli("fit", path)
        refused(result, f"c.yaml:30  output.runs_dir: {runs_dir}: cannot make a run "
                "directory there", "Permission denied")
        assert list(runs_dir.iterdir()) == []
    finally:
        runs_dir.chmod(0o700)


# -- files follow the umask ------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=["022", "077", "002"])
def test_atomic_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_text(tmp_path / "a.txt", "x\n")
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_run_files_follow_the_umask(iris_run: Path) -> None:
    expected = 0o666 & ~current_umask()
    for name in ("run.json", "config.yaml", "metrics.json", "history.csv", "model.keras"):
        assert stat.S_IMODE((iris_run / name).stat().st_mode) == expected, name


# -- the battery's size ----------------------------------------------------------------------

def test_the_battery_holds_enough_cases() -> None:
    configs = len(INVALID) + len(HOSTILE_YAML) + len(SET_CASES)
    inputs = len(DATA_CASES) + len(EVALUATE_CASES) + len(PREDICT_CASES)
    assert configs >= 40 and inputs >= 15
