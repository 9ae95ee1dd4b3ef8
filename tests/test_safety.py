"""What a config or a run directory can make kerastrain do: no path out of the runs
directory, no text evaluated as code, no model file's code run without --unsafe (that one
is in test_inference.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import Cli, iris_config, write_config
from kerastrain.errors import RunDirError
from kerastrain.rundir import RunDir
from test_broken_inputs import refused

SRC = Path(__file__).parent.parent / "src" / "kerastrain"


@pytest.mark.parametrize("name", ["../escape", "a/../../b", "/etc/x", "..", "."])
def test_a_run_name_cannot_escape_the_runs_directory(cli: Cli, tmp_path: Path,
                                                     name: str) -> None:
    runs = tmp_path / "deep" / "runs"
    config = write_config(tmp_path / "c.yaml",
                          iris_config(runs, name=name))
    refused(cli("fit", config), f"{config}:1  name: String should match pattern")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
    with pytest.raises(RunDirError, match="never a path"):
        RunDir.create(runs, name)
    assert not runs.exists()


def test_nothing_reaches_eval_or_exec() -> None:
    """No call of eval, exec or compile in the package: a config's text is data."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("eval", "exec", "compile", "__import__")):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.func.id}")
    assert found == []
