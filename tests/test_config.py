"""Config loading: every invalid fixture gives its message and line; overrides; resolution."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import HERE, iris_config, write_config
from kerastrain.config import load_config
from kerastrain.config.loading import apply_override
from kerastrain.config.yamlpos import Positions
from kerastrain.errors import ConfigError

INVALID = sorted((HERE / "configs" / "invalid").glob("*.yaml"))
VALID = sorted((HERE / "configs" / "valid").glob("*.yaml"))


def expectation(path: Path) -> tuple[int, str]:
    """The fixture's first line: '# expect: LINE | message'."""
    match = re.match(r"# expect: (\d+) \| (.*)", path.read_text().splitlines()[0])
    assert match, f"{path} lacks its '# expect: LINE | message' line"
    return int(match.group(1)), match.group(2)


@pytest.mark.parametrize("fixture", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_reports_message_and_line(cli, fixture: Path) -> None:
    line, message = expectation(fixture)
    result = cli("validate", fixture)
    assert result.exit_code == 2, result.output
    assert f"{fixture}:{line}  " in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("fixture", VALID, ids=[p.stem for p in VALID])
def test_valid_fixture_validates(cli, fixture: Path) -> None:
    result = cli("validate", fixture, "--json")
    assert result.exit_code == 0, result.output
    assert '"valid": true' in result.stdout


def test_schema_problems_are_reported_together(tmp_path: Path) -> None:
    config = iris_config(tmp_path)
    config["training"] = {"epoch": 3, "batch_size": 0}
    config["compile"]["optimizr"] = "adam"
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path / "c.yaml", config))
    paths = {issue.path for issue in caught.value.issues}
    assert paths == {"training.epoch", "training.batch_size", "compile.optimizr"}
    assert all(issue.line for issue in caught.value.issues)


def test_set_overrides_fields_and_list_items(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", iris_config(tmp_path))
    loaded = load_config(path, ["training.epochs=7", "model.layers.0.units=64",
                                "compile.optimizer.learning_rate=0.5"])
    cfg = loaded.config
    assert cfg.training.epochs == 7
    assert cfg.model.layers[0].args["units"] == 64
    assert cfg.compile.optimizer.args["learning_rate"] == 0.5


def test_invalid_override_names_the_override(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", iris_config(tmp_path))
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["training.epochs=abc"])
    text = caught.value.render()
    assert "--set training.epochs=abc  training.epochs: Input should be a valid integer" in text


def test_override_past_the_end_of_a_list_is_an_error() -> None:
    data = {"model": {"layers": [{"type": "Dense"}]}}
    with pytest.raises(ConfigError, match="index 3 is past the end of a list of 1 items"):
        apply_override(data, "model.layers.3.units=2", Positions("x.yaml"))
    apply_override(data, "model.layers.1={type: Dropout, rate: 0.5}", Positions("x.yaml"))
    assert data["model"]["layers"][1] == {"type": "Dropout", "rate": 0.5}


def test_override_without_equals_is_an_error(cli, iris_yaml: Path) -> None:
    result = cli("validate", iris_yaml, "--set", "training.epochs")
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.stderr


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = iris_config(tmp_path)
    del config["seed"]
    loaded = load_config(write_config(tmp_path / "c.yaml", config))
    assert loaded.config.seed is not None  # drawn, so the resolved config pins it
    again = load_config(write_config(tmp_path / "r.yaml", loaded.config.resolved()))
    assert again.config == loaded.config


def test_data_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    folder.mkdir()
    config = iris_config(tmp_path)
    config["data"] = {"source": {"type": "csv", "path": "rows.csv"}, "target": "y"}
    loaded = load_config(write_config(folder / "c.yaml", config))
    assert loaded.config.data.source.path == str(folder / "rows.csv")


def test_missing_config_file(cli, tmp_path: Path) -> None:
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "no such config file" in result.stderr


def test_schema_errors_do_not_import_tensorflow(tmp_path: Path) -> None:
    config = iris_config(tmp_path)
    config["training"] = {"epoch": 3}
    path = write_config(tmp_path / "c.yaml", config)
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom kerastrain.cli import app\n"
            f"r = CliRunner().invoke(app, ['validate', {str(path)!r}])\n"
            "print(r.exit_code, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "False", "False"]


def test_yaml_fixture_files_are_plain_yaml() -> None:
    for path in INVALID:
        if path.stem != "bad_yaml" and path.stem != "duplicate_key":
            assert isinstance(yaml.safe_load(path.read_text()), dict)


def test_runs_dir_is_relative_to_the_config(tmp_path: Path, monkeypatch) -> None:
    """Written in the file: from the file's folder; with --set: from the working directory;
    either way absolute in the resolved config (the run's config.yaml)."""
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    config = folder / "c.yaml"
    config.write_text(yaml.safe_dump(iris_config(Path("../runs"))))
    monkeypatch.chdir(tmp_path)
    loaded = load_config(config)
    assert loaded.config.output.runs_dir == str(tmp_path / "project" / "runs")
    assert loaded.config.resolved()["output"]["runs_dir"] == str(tmp_path / "project" / "runs")
    overridden = load_config(config, ["output.runs_dir=elsewhere"])
    assert overridden.config.output.runs_dir == str(tmp_path / "elsewhere")


@pytest.mark.parametrize("text, number", [("1e-3", 0.001), ("1E5", 1e5), ("-2.5e+3", -2500.0),
                                          ("1e3", 1000.0), (".5e-1", 0.05)])
def test_exponent_numbers_are_numbers_in_the_file_and_in_set(tmp_path: Path, text: str,
                                                             number: float) -> None:
    """YAML 1.1 reads `1e-3` as a string; a config reads it as the number users mean."""
    config = iris_config(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False).replace(
        "learning_rate: 0.02", f"learning_rate: {text}"))
    loaded = load_config(path)
    assert loaded.config.compile.optimizer.args["learning_rate"] == number
    line = path.read_text().splitlines().index(f"    learning_rate: {text}") + 1
    assert loaded.positions.locate(("compile", "optimizer", "learning_rate")) == (str(path), line)
    cfg = load_config(path, [f"compile.optimizer.learning_rate={text}"]).config
    assert cfg.compile.optimizer.args["learning_rate"] == number
    assert load_config(path, ["name=1e3x"]).config.name == "1e3x"  # not a number: text


def test_a_set_typo_in_an_optimizer_argument_names_the_set_and_the_argument(
        cli, iris_yaml: Path) -> None:
    result = cli("validate", iris_yaml, "--set", "compile.optimizer.learning_rte=0.1")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --set compile.optimizer.learning_rte=0.1  "
                                    "compile.optimizer.learning_rte: Adam takes no argument "
                                    "'learning_rte'. Did you mean 'learning_rate'?")
    assert f"{iris_yaml.name}:" not in result.stderr
    fine = cli("validate", iris_yaml, "--set", "compile.optimizer={type: SGD, momentum: 0.9, "
               "nesterov: true, clipnorm: 1.0, weight_decay: 0.01}")
    assert fine.exit_code == 0, fine.output


def test_what_keras_rejects_at_a_line_names_the_set_that_changed_it(cli, iris_yaml) -> None:
    result = cli("validate", iris_yaml, "--set", "compile.optimizer.learning_rate=-1")
    assert result.exit_code == 2, result.output
    assert "compile.optimizer: Keras rejected Adam(learning_rate=-1)" in result.stderr
    assert "(changed by --set compile.optimizer.learning_rate=-1)" in result.stderr
