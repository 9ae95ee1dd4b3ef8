"""Plugins: modules named in a config register custom layers, losses and metrics that the
config uses by name, and that `evaluate` and `predict` find again to load `model.keras`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kerastrain.cli import app
from kerastrain.config import load_config
from kerastrain.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIGS = ROOT / "tests" / "configs"
EXAMPLE = ROOT / "examples" / "plugins"


def _example(tmp_path: Path, *replace: tuple[str, str]) -> Path:
    """The plugin example copied into `tmp_path` (module beside config), edited."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(EXAMPLE / "kt_example_plugin.py", folder)
    text = (EXAMPLE / "wide_deep_plugin.yaml").read_text()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    config = folder / "wide_deep_plugin.yaml"
    config.write_text(text)
    return config


def test_plugin_names_are_checked_with_did_you_mean(tmp_path: Path):
    from kerastrain.experiment import check_names

    config = _example(tmp_path, ("type: Scale,", "type: Scal,"))
    with pytest.raises(ConfigError) as caught:
        check_names(load_config(config))
    assert f"{config}:18  model.nodes.2.type: unknown layer 'Scal'. Did you mean 'Scale'" \
        in caught.value.render()


@pytest.mark.slow
def test_fit_evaluate_predict_with_a_plugin(runner, tmp_path: Path):
    config = _example(tmp_path)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["fit", str(config), "--quiet", "--set", f"output.runs_dir={runs}",
                                 "--set", "training.epochs=2"])
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    info = json.loads((run / "run.json").read_text())
    assert info["plugin_path"] == [str(config.parent.resolve())]
    history = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert "within_10_percent" in history and "val_within_10_percent" in history

    rows = tmp_path / "new.csv"
    rows.write_text("age,sex,bmi,bp,s1,s2,s3,s4\n0.01,0.05,0.06,0.02,-0.04,-0.03,-0.04,0.0\n"
                    "-0.02,-0.04,0.01,0.03,0.02,0.01,0.0,-0.01\n")
    script = ("import json, sys; from kerastrain.inference import evaluate, predict; "
              "assert 'kt_example_plugin' not in sys.modules; "
              f"e = evaluate({str(run)!r}); "
              f"p = predict({str(run)!r}, {str(rows)!r}, {str(tmp_path / 'p.csv')!r}); "
              "print(json.dumps({'evaluate': e, 'predict': p}))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(out["evaluate"]["metrics"]) == {"loss", "mae", "within_10_percent"}
    assert out["predict"]["columns"] == ["output"]
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 3


def test_a_runs_config_yaml_finds_its_plugins_again(tmp_path: Path):
    """A run's config.yaml lives in the run directory, away from the plugin: it records the
    plugin folder absolute (plugin_path), so `validate`/`fit` of it, in a fresh process,
    from another working directory, finds the plugin again."""
    import yaml

    config = _example(tmp_path)
    loaded = load_config(config)
    assert loaded.config.plugin_path == [str(config.parent.resolve())]
    run = tmp_path / "runs" / "wide-deep-run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(loaded.config.resolved(), sort_keys=False))
    assert load_config(run / "config.yaml").config.plugin_path == loaded.config.plugin_path
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "kerastrain", "validate",
                           str(run / "config.yaml"), "--quiet"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_plugin_path_is_relative_to_the_config(tmp_path: Path, monkeypatch):
    config = _example(tmp_path, ("plugins: [kt_example_plugin]",
                                 "plugins: [kt_example_plugin]\nplugin_path: [../lib, .]"))
    monkeypatch.chdir(tmp_path)
    folders = load_config(config).config.plugin_path
    assert folders == [str(tmp_path / "lib"), str(config.parent.resolve())]
    overridden = load_config(config, ["plugin_path=[mine]"]).config.plugin_path
    assert overridden == [str(tmp_path / "mine")]
