"""Data bigger than memory (issue 17): whole-process peak memory and wall time of a
streamed source (`stream: true`) against the in-memory path and the hand-tuned script.

    python benchmarks/streaming.py --only mlp240k      # 240,000 x 784 rows, 1 epoch
    python benchmarks/streaming.py --only rows          # 60,000 then 960,000 rows streamed
    python benchmarks/streaming.py --quick              # a smoke run: a tenth of the rows

`mlp240k`: the seeds' 784-300-300-10 MLP, 1 epoch, batch 32, SGD, validation_split 0.1,
on 240,000 x 784 float32 rows: kerastrain streaming x.npy, kerastrain reading the same
rows from an NPZ into memory, and `peers/seed_mlp.py` with SPE=32 (the hand-tuned script)
on that NPZ. Targets: streamed peak at most 1,600 MiB and at most 0.6x the script's;
wall at most 1.05x the script's.

`rows`: the same model streaming 60,000 and then 960,000 rows (3 GiB of float32 on
disk), and reading the 60,000 into memory. Targets: the peak grows by at most 15% from
60,000 to 960,000 rows; time per row at 60,000 within 1.1x of the in-memory run's.

Each variant runs as its own process (`compare.measure`: wall from spawn to exit, peak
resident memory from `ru_maxrss`), once per round, for `--pairs` rounds; medians are
compared. Data generation is not timed. Memory does not depend on the machine's load;
wall time does: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_compare", HERE / "compare.py")
compare = importlib.util.module_from_spec(_spec)
sys.modules["bench_compare"] = compare
_spec.loader.exec_module(compare)

CHUNK = 20_000


def write_rows(folder: Path, rows: int) -> tuple[Path, Path]:
    """x.npy (rows x 784 float32, 10 Gaussian classes as peers/make_data.py draws them) and
    y.npy, written a chunk at a time."""
    x_path, y_path = folder / f"x{rows}.npy", folder / f"y{rows}.npy"
    if x_path.exists() and y_path.exists():
        return x_path, y_path
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 784)).astype("float32")
    y = rng.integers(0, 10, size=rows)
    with open(x_path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (rows, 784)})
        for start in range(0, rows, CHUNK):
            part = y[start:start + CHUNK]
            noise = rng.normal(scale=3.0, size=(len(part), 784))
            handle.write((centers[part] + noise).astype("float32").tobytes())
    np.save(y_path, y)
    return x_path, y_path


def write_npz(folder: Path, x_path: Path, y_path: Path) -> Path:
    """The same rows as one NPZ (x, y), for the in-memory run and the script."""
    out = x_path.with_suffix(".npz")
    if not out.exists():
        np.savez(out, x=np.load(x_path), y=np.load(y_path))
    return out


def config(folder: Path, name: str, source: dict) -> Path:
    """The seeds' MLP as a config (peers/seed_mlp.yaml), 1 epoch, on `source`."""
    import yaml

    cfg = yaml.safe_load((HERE / "peers" / "seed_mlp.yaml").read_text())
    cfg["data"]["source"] = source
    cfg["data"]["features"] = ["features" if source["type"] == "npy" else "x"]
    cfg["data"]["target"] = "target" if source["type"] == "npy" else "y"
    cfg["training"]["epochs"] = 1
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def median(runs: list[dict], label: str) -> tuple[float, float] | None:
    ok = [r for r in runs if r["label"] == label and r["code"] == 0]
    if not ok:
        return None
    return (statistics.median(r["wall_s"] for r in ok),
            statistics.median(r["peak_mib"] for r in ok))


def run(variants: list[tuple[str, list[str], dict]], pairs: int, work: Path) -> list[dict]:
    runs = []
    for round_ in range(pairs):
        for label, argv, env in variants:
            log = work / "logs" / f"{len(runs)}.log"
            log.parent.mkdir(exist_ok=True)
            wall, maxrss, tree, code, cpu = compare.measure(argv, env, work, log)
            peak = max(maxrss, tree) / 1024
            runs.append({"label": label, "round": round_, "wall_s": round(wall, 2),
                         "peak_mib": round(peak, 1), "cpu_s": round(cpu, 2), "code": code,
                         "argv": argv})
            print(f"round {round_ + 1}/{pairs}  {label:<34} {wall:7.2f} s  {peak:7.0f} MiB"
                  + ("" if code == 0 else f"  exit {code}: see {log}"), file=sys.stderr)
    return runs


def mlp240k(args: argparse.Namespace, work: Path) -> list[str]:
    rows = 24_000 if args.quick else 240_000
    x, y = write_rows(work, rows)
    npz = write_npz(work, x, y)
    kt, runs_dir = args.kerastrain, ["--set", f"output.runs_dir={work / 'runs'}"]
    streamed = config(work, "streamed", {"type": "npy", "path": str(x), "target_path": str(y),
                                         "stream": True})
    memory = config(work, "memory", {"type": "npz", "path": str(npz)})
    runs = run([("kerastrain stream: true", [*kt, "fit", str(streamed), "--quiet", *runs_dir], {}),
                ("kerastrain in memory (npz)", [*kt, "fit", str(memory), "--quiet", *runs_dir],
                 {}),
                ("hand-tuned script (SPE=32)", [args.python, str(HERE / "peers" / "seed_mlp.py"),
                                                str(npz)],
                 {"SPE": "32", "EPOCHS": "1", "OUT": str(work / "seed.keras")})],
               args.pairs, work)
    ours, memory_run, peer = (median(runs, label) for label in (
        "kerastrain stream: true", "kerastrain in memory (npz)", "hand-tuned script (SPE=32)"))
    lines = [f"MLP, {rows:,} x 784 float32, 1 epoch (medians of {args.pairs})",
             *(f"  {label}: {m[0]:.2f} s, {m[1]:,.0f} MiB" for label, m in (
                 ("stream: true", ours), ("in memory", memory_run), ("hand-tuned script", peer))
               if m)]
    if ours and peer:
        lines.append(f"  stream / script: {ours[0] / peer[0]:.2f}x wall (target <= 1.05), "
                     f"{ours[1] / peer[1]:.2f}x memory (target <= 0.6); peak {ours[1]:,.0f} "
                     "MiB (target <= 1,600)")
    return lines, runs


def rows(args: argparse.Namespace, work: Path) -> list[str]:
    small, large = (6_000, 96_000) if args.quick else (60_000, 960_000)
    kt, runs_dir = args.kerastrain, ["--set", f"output.runs_dir={work / 'runs'}"]
    variants = []
    for n in (small, large):
        x, y = write_rows(work, n)
        cfg = config(work, f"stream{n}", {"type": "npy", "path": str(x), "target_path": str(y),
                                          "stream": True})
        variants.append((f"stream: true, {n:,} rows", [*kt, "fit", str(cfg), "--quiet",
                                                       *runs_dir], {}))
    x, y = write_rows(work, small)
    cfg = config(work, f"memory{small}", {"type": "npy", "path": str(x), "target_path": str(y)})
    variants.append((f"in memory, {small:,} rows", [*kt, "fit", str(cfg), "--quiet", *runs_dir],
                     {}))
    runs = run(variants, args.pairs, work)
    a, b, c = (median(runs, label) for label, _, _ in variants)
    lines = [f"streamed rows, {small:,} then {large:,} (medians of {args.pairs})",
             *(f"  {label}: {m[0]:.2f} s ({m[0] / n * 1e6:.1f} us/row), {m[1]:,.0f} MiB"
               for (label, _, _), m, n in zip(variants, (a, b, c), (small, large, small),
                                              strict=True) if m)]
    if a and b:
        lines.append(f"  peak {large:,} / {small:,} rows: {b[1] / a[1]:.3f}x (target <= 1.15)")
    if a and c:
        lines.append(f"  time per row at {small:,}, stream / in memory: {a[0] / c[0]:.2f}x "
                     "(target <= 1.1)")
    return lines, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=("mlp240k", "rows"))
    parser.add_argument("--pairs", type=int, default=1, help="rounds (default 1)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keeps the data (reused when there), runs and logs")
    parser.add_argument("--kerastrain", default=None)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--json", type=Path, default=None, help="the raw numbers")
    args = parser.parse_args()
    args.kerastrain = compare._kerastrain_command(args.kerastrain)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kerastrain-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    report, raw = [], []
    try:
        for name in args.only or ["mlp240k", "rows"]:
            lines, runs = {"mlp240k": mlp240k, "rows": rows}[name](args, work)
            report += lines
            raw += runs
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(report))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1) + "\n")
    if any(r["code"] for r in raw):
        sys.exit(1)


if __name__ == "__main__":
    main()
