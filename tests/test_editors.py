"""Editor support: `kerastrain schema` (JSON schema of the config), `kerastrain init`
(a starter config that runs as written), shell completion, and `--help` without
TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import REPO
from kerastrain.config import load_config
from kerastrain.starter import DATASETS


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    from typer.testing import CliRunner

    from kerastrain.cli import app

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_schema_accepts_every_shipped_config(validator, config: Path) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in validator.iter_errors(yaml.safe_load(config.read_text()))]
    assert errors == []


def test_schema_rejects_unknown_keys_and_names(validator) -> None:
    config = yaml.safe_load((REPO / "configs" / "iris_mlp.yaml").read_text())
    config["trainng"] = {"epochs": 3}
    assert any("'trainng' was unexpected" in e.message for e in validator.iter_errors(config))
    del config["trainng"]
    config["training"]["epoch"] = 3
    assert not validator.is_valid(config)
    del config["training"]["epoch"]
    config["data"]["source"] = {"type": "sklearn", "name": "irs"}
    assert not validator.is_valid(config)
    config["data"]["source"] = {"type": "csv", "name": "iris"}  # csv takes path, not name
    assert not validator.is_valid(config)


def test_schema_accepts_what_the_loader_accepts(validator) -> None:
    config = yaml.safe_load((REPO / "configs" / "wide_deep_aux.yaml").read_text())
    config["model"]["nodes"][0] = {"class_name": config["model"]["nodes"][0]["type"],
                                   **{k: v for k, v in config["model"]["nodes"][0].items()
                                      if k != "type"}}
    config["compile"]["metrics"] = {"main_output": "mae"}
    assert validator.is_valid(config), list(validator.iter_errors(config))


def test_schema_describes_fields(validator) -> None:
    defs = validator.schema["$defs"]
    undescribed = [f"{name}.{field}" for name, spec in defs.items()
                   for field, prop in spec.get("properties", {}).items()
                   if "description" not in prop]
    assert undescribed == []
    assert defs["ValidationSpec"]["properties"]["scheme"]["enum"] == [
        "holdout", "kfold", "repeated_kfold"]


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_init_writes_a_valid_commented_config(cli, tmp_path, validator, dataset) -> None:
    path = tmp_path / "starter.yaml"
    result = cli("init", "--dataset", dataset, "--output", path)
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.count("#") > 10
    assert validator.is_valid(yaml.safe_load(text))
    config = load_config(path).config
    assert config.data.source.name == dataset
    assert config.data.task == ("regression" if dataset == "diabetes" else "classification")


def test_init_task_picks_the_dataset_and_refuses_a_mismatch(cli, tmp_path) -> None:
    result = cli("init", "--task", "regression", "--output", "-")
    assert result.exit_code == 0 and "name: diabetes}" in result.stdout
    result = cli("init", "--dataset", "iris", "--task", "regression", "--output", "-")
    assert result.exit_code == 2 and "--dataset diabetes" in result.stderr
    result = cli("init", "--dataset", "irs")
    assert result.exit_code == 2 and "Did you mean 'iris'" in result.stderr


def test_init_never_overwrites(cli, tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("precious")
    result = cli("init", "--output", path)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert path.read_text() == "precious"


def test_init_default_file_name(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init", "--dataset", "wine").exit_code == 0
    assert (tmp_path / "wine.yaml").is_file()


def test_init_config_fits_as_written(cli, tmp_path) -> None:
    path = tmp_path / "iris.yaml"
    assert cli("init", "--output", path).exit_code == 0
    result = cli("fit", path, "--set", "training.epochs=2", "--set",
                 f"output.runs_dir={tmp_path / 'runs'}", "--set", "output.plots=false",
                 "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and "test" in data["metrics"]


def test_help_offers_completion_and_imports_no_tensorflow() -> None:
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from kerastrain.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\n"
            "print('--install-completion' in r.stdout, 'tensorflow' in sys.modules)\n"
            "r = CliRunner().invoke(app, ['schema'])\n"
            "r = CliRunner().invoke(app, ['init', '--output', '-'])\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_init_under_a_file_is_exit_2_naming_it(cli, tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    for output in (tmp_path / "afile" / "y.yaml", tmp_path / "afile" / "deeper" / "y.yaml"):
        result = cli("init", "--output", output)
        assert result.exit_code == 2, result.output
        assert f"cannot write {output}: {tmp_path / 'afile'} is a file" in result.stderr
        assert "Traceback" not in result.stderr
    assert (tmp_path / "afile").read_text() == "x"
