"""The comparison harness (benchmarks/compare.py): its measurement of a child process and
its summary, without running any benchmark."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "benchmarks" / "compare.py")
compare = importlib.util.module_from_spec(_spec)
sys.modules["bench_compare"] = compare
_spec.loader.exec_module(compare)


def test_measure_reports_wall_time_peak_memory_cpu_and_exit_code(tmp_path: Path) -> None:
    # The sampler looks every 0.2 s: a child holding 200 MiB for 1 s is seen several times;
    # it spins 0.5 s of CPU and sleeps 1 s.
    script = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); " \
             "t = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n" \
             "time.sleep(1.0); raise SystemExit(3)"
    wall, maxrss_kib, tree_kib, code, cpu = compare.measure(
        [sys.executable, "-c", script], {}, tmp_path, tmp_path / "log")
    assert code == 3
    assert 1.5 <= wall < 30
    assert 0.5 <= cpu < wall - 0.9
    assert maxrss_kib > 200 * 1024
    assert 200 * 1024 < tree_kib < 2 * maxrss_kib  # the tree's peak: the child and no more


def test_summary_ratios_targets_and_markdown() -> None:
    chosen = [compare.Comparison("mlp", "MLP", [], [
        compare.Target("kerastrain", "tuned", 1.05, 1.1),
        compare.Target("kerastrain", "plain", 1 / 1.5)]),
        compare.Comparison("help", "--help", [], [compare.Target("kerastrain", None, 0.2)])]
    runs = [compare.Run("mlp", v, r, w, m, 0.0, 0, []) for v, r, w, m in [
        ("kerastrain", 0, 10.0, 1000.0), ("kerastrain", 1, 12.0, 1100.0),
        ("kerastrain", 2, 30.0, 1000.0), ("tuned", 0, 10.0, 1000.0),
        ("plain", 0, 20.0, 900.0)]] + [compare.Run("help", "kerastrain", 0, 0.1, 20.0, 0.0,
                                                   0, [])]
    rows = compare.summarize(chosen, runs, quick=False)
    tuned, plain, help_row = rows
    assert tuned["kerastrain_wall_s"] == 12.0 and tuned["wall_ratio"] == pytest.approx(1.2)
    assert tuned["met"] is False and plain["met"] is True and help_row["met"] is True
    markdown = compare.table(rows, markdown=True).splitlines()
    assert markdown[0] == "| work | kerastrain | peer | ratio | target | met |"
    assert "1.20x wall, 1.00x memory" in markdown[2] and markdown[2].endswith("| no |")
    assert "1.5x faster" in markdown[3]
    assert all(row["met"] is None for row in compare.summarize(chosen, runs, quick=True))
