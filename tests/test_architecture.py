"""The shape of the code (docs/architecture.md): imports flow one way between the stages,
no module imports itself back through others, none outgrows 300 lines, and every module
imports on its own in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kerastrain"

# The stages in the order data flows; a unit may import only units of lower rank (and
# modules of its own package). docs/architecture.md explains each.
RANKS = {
    "__init__": 0, "errors": 0, "_keras": 0, "kerasnames": 0, "yamlnum": 0,
    "config": 1, "registry": 1, "plugins": 1, "rundir": 1,
    "data": 2,
    "models": 3,
    "experiment": 4,
    "training": 5, "inference": 5,
    "compare": 6, "export": 6,
    "serving": 7,
    "runs": 7,
    "runview": 8, "schema_export": 8, "starter": 8, "tracking": 8,
    "sweep": 9,
    "cli": 10,
    "__main__": 11,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """Every kerastrain module `module` imports, at the top or inside a function."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] == "kerastrain" and n != module}
    return {n if n in MODULES else n.rpartition(".")[0] for n in found} - {module}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_stage() -> None:
    assert {_unit(m) for m in MODULES} <= set(RANKS), set(map(_unit, MODULES)) - set(RANKS)


def test_imports_flow_one_way_between_stages() -> None:
    wrong = [f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
             if _unit(t) != _unit(m) and RANKS[_unit(t)] >= RANKS[_unit(m)]
             and _unit(t) != "__init__"]
    assert not wrong, "imports against the flow: " + "; ".join(wrong)


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycle = trail[trail.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, trail + [target])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [module])


def test_no_module_outgrows_300_lines() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    assert not {m: n for m, n in sizes.items() if n > 300}
    assert sizes["kerastrain.training.fit"] < 160


# One fresh interpreter imports the third-party packages once, then forks a child per module
# that imports that module alone: no kerastrain module is loaded before the fork, so each
# child starts from no kerastrain state, as a fresh interpreter would (what a module forgets
# to import itself, or a cycle, fails there), without paying NumPy's, pydantic's and
# TensorFlow's import a hundred times (TensorFlow's seconds in each of the seven modules that
# load it). TensorFlow and Keras are imported as `_keras` imports them (the top packages, its
# log level) and nothing of theirs runs before a fork.
_IMPORT_EACH = """
import json, os, sys
import numpy, pydantic, rich, typer, yaml  # noqa: F401  (third-party only)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, tensorflow  # noqa: F401
assert not [m for m in sys.modules if m.split(".")[0] == "kerastrain"]
failed = {}
for module in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 0
        try:
            __import__(module)
        except BaseException as exc:
            os.write(write, f"{type(exc).__name__}: {exc}".encode()[:4000])
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as said:
        message = said.read()
    _, status = os.waitpid(pid, 0)
    if status:
        failed[module] = message or f"status {status}"
print(json.dumps(failed))
"""


@pytest.mark.slow  # one child per module; those that train import TensorFlow
def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    modules = [m for m in MODULES if not m.endswith("__main__")]
    done = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *modules], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    failed = json.loads(done.stdout.splitlines()[-1])
    assert not failed, failed
