"""Whole-process comparisons of the kerastrain CLI against the hand-written Keras scripts it
replaces (issue 9): wall time and peak memory, from alternating runs, against the targets.

    python benchmarks/compare.py                     # everything, 3 rounds (about 10 minutes)
    python benchmarks/compare.py --only iris --pairs 1
    python benchmarks/compare.py --quick             # 1 epoch on a tenth of the rows: a smoke run
    python benchmarks/compare.py --markdown          # the table as the README shows it

Each comparison runs its variants as separate processes, one after another within a round
(kerastrain, then each peer) and for `--pairs` rounds, so a slow spell of a shared machine
falls on all of them alike; medians are compared. Wall time is measured around the child;
peak memory is the child's `ru_maxrss` (from `os.wait4`), or, where the child starts worker
processes, the largest sum of the process tree's resident memory sampled every 0.2 s.
The raw numbers land in a JSON file (`--json`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
REPO = HERE.parent
COMPARISONS = ("mlp", "kfold", "iris", "help")
QUICK_ROWS = {"fm.npz": 6000, "digits10.csv": 1797}


@dataclass
class Variant:
    """One program of a comparison: its command line, environment and role."""

    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    kerastrain: bool = False


@dataclass
class Target:
    """What the issue asks: `ratio` of kerastrain to `peer` (or `seconds` absolute) at most."""

    kerastrain: str
    peer: str | None = None
    wall: float | None = None     # at most this ratio (or these seconds without a peer)
    memory: float | None = None   # at most this ratio of peak memory
    note: str = ""


@dataclass
class Run:
    comparison: str
    variant: str
    round: int
    wall_s: float
    maxrss_mib: float
    tree_rss_mib: float
    returncode: int
    argv: list[str]
    cpu_s: float = 0.0   # the child's own user + system CPU seconds (not its children's)


@dataclass
class Comparison:
    name: str
    title: str
    variants: list[Variant]
    targets: list[Target]


# -- measuring one process ------------------------------------------------------------------

def _tree_rss_kib(root: int) -> int:
    """Resident memory of `root` and all its descendants, from /proc (0 where unreadable)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{entry.name}/statm") as handle:
                pages = int(handle.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        rss[pid] = pages * page_kib
    total, frontier = 0, [root]
    while frontier:
        pid = frontier.pop()
        total += rss.get(pid, 0)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return total


def measure(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[float, int,
                                                                                 int, int, float]:
    """Run `argv` to its end: (wall seconds, ru_maxrss KiB, sampled tree peak KiB, exit code,
    its user + system CPU seconds). Its output goes to `log`."""
    sampled = [0]
    done = threading.Event()
    with open(log, "wb") as out:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                 stderr=subprocess.STDOUT)
        if Path("/proc").is_dir():
            def sample() -> None:
                while not done.wait(0.2):
                    sampled[0] = max(sampled[0], _tree_rss_kib(child.pid))
            threading.Thread(target=sample, daemon=True).start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        child.returncode = os.waitstatus_to_exitcode(status)
    return (wall, int(usage.ru_maxrss), sampled[0], child.returncode,
            usage.ru_utime + usage.ru_stime)


# -- the comparisons ------------------------------------------------------------------------

def _accepts(kerastrain: list[str], config: Path, override: str, cwd: Path) -> bool:
    """Whether `kerastrain validate` takes `--set override` (a key being added elsewhere)."""
    result = subprocess.run([*kerastrain, "validate", str(config), "--set", override],
                            cwd=cwd, capture_output=True, text=True)
    return result.returncode == 0


def comparisons(args: argparse.Namespace, work: Path) -> list[Comparison]:
    """The comparisons asked for, with their command lines."""
    kt, py = args.kerastrain, [args.python]
    fit_sets = [a for s in args.set for a in ("--set", s)]
    runs = ["--set", f"output.runs_dir={work / 'runs'}"]
    env: dict[str, str] = {}
    if args.quick:
        fit_sets += ["--set", "training.epochs=1"]
        env["EPOCHS"] = "1"
    if args.gpu:
        fit_sets += ["--set", "runtime.dtype_policy=mixed_float16"]
        env["DTYPE_POLICY"] = "mixed_float16"
    out = work / "out"
    quick = " (--quick: a tenth of the rows, 1 epoch)" if args.quick else ""
    chosen = []
    if "mlp" in args.only:
        fm = str(work / "fm.npz")
        title = "784-300-300-10 MLP, fm.npz 60k x 784, 3 epochs, bs 32, SGD" + quick
        chosen.append(Comparison("mlp", title, [
            Variant("kerastrain", [*kt, "fit", str(work / "seed_mlp.yaml"), "--quiet", *runs,
                                   *fit_sets], kerastrain=True),
            Variant("seed script (SPE=1)", [*py, str(PEERS / "seed_mlp.py"), fm],
                    {**env, "SPE": "1", "OUT": str(out / "seed_plain.keras")}),
            Variant("hand-tuned (SPE=32)", [*py, str(PEERS / "seed_mlp.py"), fm],
                    {**env, "SPE": "32", "OUT": str(out / "seed_tuned.keras")}),
        ], [Target("kerastrain", "hand-tuned (SPE=32)", 1.05, 1.1),
            Target("kerastrain", "seed script (SPE=1)", 1 / 1.5)]))
    if "kfold" in args.only:
        config = work / "kfold.yaml"
        variants, targets = [], []
        for workers in args.workers:
            if workers == "default":
                label, extra = "kerastrain", []
            elif _accepts(kt, config, f"runtime.workers={workers}", work):
                label, extra = f"kerastrain workers={workers}", ["--set",
                                                                f"runtime.workers={workers}"]
            else:
                print(f"kfold: this kerastrain does not accept runtime.workers={workers}; "
                      "skipped", file=sys.stderr)
                continue
            variants.append(Variant(label, [*kt, "fit", str(config), "--quiet", *runs,
                                            *extra, *fit_sets], kerastrain=True))
            if workers == "1":
                targets.append(Target(label, "hand-written loop", 1.0))
            elif workers == "default":
                targets.append(Target(label, "hand-written loop", 1 / 1.4, None,
                                      "the default workers, on 2 cores"))
        variants.append(Variant("hand-written loop", [*py, str(PEERS / "kfold_hand.py"),
                                                      str(work / "digits10.csv")],
                                {**env, "OUT": str(out / "kfold_hand")}))
        chosen.append(Comparison("kfold", "5-fold 64-300-300-10 MLP, digits10.csv 18k rows, "
                                 "5 epochs" + quick, variants, targets))
    if "iris" in args.only:
        iris_sets = ["--set", "training.epochs=2"] if args.quick else []
        chosen.append(Comparison("iris", "iris 5-fold with refit, from the CLI"
                                 + (" (--quick: 2 epochs)" if args.quick else ""), [
            Variant("kerastrain", [*kt, "fit", str(REPO / "configs" / "iris_mlp.yaml"),
                                   "--set", "validation.scheme=kfold", "--quiet", *runs,
                                   *iris_sets, *[a for s in args.set for a in ("--set", s)]],
                    kerastrain=True),
        ], [Target("kerastrain", None, 15.0, None,
                   "Ludwig 0.17 `experiment -kf 5`: 63 s, issue 9's figure, not run here")]))
    if "help" in args.only:
        chosen.append(Comparison("help", "`kerastrain --help`", [
            Variant("kerastrain", [*kt, "--help"], kerastrain=True)],
            [Target("kerastrain", None, 0.2)]))
    return chosen


def prepare(work: Path, args: argparse.Namespace) -> None:
    """Generate the data (a tenth of it with --quick) and put the configs beside it."""
    if not {"mlp", "kfold"} & set(args.only):
        return
    subprocess.run([args.python, str(PEERS / "make_data.py"), str(work)], check=True,
                   stdout=subprocess.DEVNULL)
    for config in ("seed_mlp.yaml", "kfold.yaml"):
        shutil.copy(PEERS / config, work / config)
    if args.quick:
        import numpy as np

        with np.load(work / "fm.npz") as archive:
            x, y = archive["x"], archive["y"]
        np.savez(work / "fm.npz", x=x[:QUICK_ROWS["fm.npz"]], y=y[:QUICK_ROWS["fm.npz"]])
        lines = (work / "digits10.csv").read_text().splitlines(keepends=True)
        (work / "digits10.csv").write_text("".join(lines[:QUICK_ROWS["digits10.csv"] + 1]))
    (work / "out").mkdir(exist_ok=True)


def run_all(chosen: list[Comparison], pairs: int, work: Path) -> list[Run]:
    """Every variant of a comparison once per round, in order, for `pairs` rounds."""
    runs = []
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    for comparison in chosen:
        for round_ in range(pairs):
            for variant in comparison.variants:
                log = logs / f"{comparison.name}-{len(runs)}.log"
                wall, maxrss, tree, code, cpu = measure(variant.argv, variant.env, work, log)
                runs.append(Run(comparison.name, variant.label, round_, round(wall, 3),
                                round(maxrss / 1024, 1), round(tree / 1024, 1), code,
                                variant.argv, round(cpu, 2)))
                print(f"{comparison.name:<6} round {round_ + 1}/{pairs}  {variant.label:<26} "
                      f"{wall:7.2f} s  {max(maxrss, tree) / 1024:7.0f} MiB  {cpu:6.1f} CPU-s"
                      + ("" if code == 0 else f"  exit {code}: see {log}"), file=sys.stderr)
                if code != 0:
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    print("\n".join("    " + line for line in tail), file=sys.stderr)
    return runs


# -- the summary ----------------------------------------------------------------------------

def _median(runs: list[Run], comparison: str, variant: str) -> tuple[float, float] | None:
    ok = [r for r in runs if r.comparison == comparison and r.variant == variant
          and r.returncode == 0]
    if not ok:
        return None
    return (statistics.median(r.wall_s for r in ok),
            statistics.median(max(r.maxrss_mib, r.tree_rss_mib) for r in ok))


def summarize(chosen: list[Comparison], runs: list[Run], quick: bool) -> list[dict]:
    """One row per target: medians, ratios, the target and whether it is met (never judged
    for a --quick run, whose work is not the target's)."""
    rows = []
    for comparison in chosen:
        for target in comparison.targets:
            ours = _median(runs, comparison.name, target.kerastrain)
            theirs = _median(runs, comparison.name, target.peer) if target.peer else None
            row = {"comparison": comparison.name, "work": comparison.title,
                   "kerastrain": target.kerastrain, "peer": target.peer,
                   "kerastrain_wall_s": ours and ours[0], "kerastrain_peak_mib": ours and ours[1],
                   "peer_wall_s": theirs and theirs[0], "peer_peak_mib": theirs and theirs[1],
                   "wall_ratio": None, "memory_ratio": None, "target_wall": target.wall,
                   "target_memory": target.memory, "note": target.note, "met": None}
            if ours and target.peer and theirs:
                row["wall_ratio"] = ours[0] / theirs[0]
                row["memory_ratio"] = ours[1] / theirs[1]
                row["met"] = ((target.wall is None or row["wall_ratio"] <= target.wall) and
                              (target.memory is None or row["memory_ratio"] <= target.memory))
            elif ours and not target.peer:
                row["met"] = ours[0] <= target.wall
            if quick:
                row["met"] = None
            rows.append(row)
    return rows


def _cell(wall: float | None, mib: float | None) -> str:
    return "failed" if wall is None else f"{wall:.2f} s, {mib:,.0f} MiB"


def _target_text(row: dict) -> str:
    if row["peer"] is None:
        return f"<= {row['target_wall']:g} s"
    parts = []
    if row["target_wall"] is not None:
        wall = row["target_wall"]
        parts.append(f"<= {wall:.2f}x wall" if wall >= 1 else f"<= {wall:.2f}x wall "
                     f"({1 / wall:.1f}x faster)")
    if row["target_memory"] is not None:
        parts.append(f"<= {row['target_memory']:.2f}x memory")
    return ", ".join(parts)


def table(rows: list[dict], markdown: bool) -> str:
    """The summary as a Markdown table (for the README) or as aligned text."""
    header = ["work", "kerastrain", "peer", "ratio", "target", "met"]
    lines = []
    for row in rows:
        peer = "-" if row["peer"] is None else (
            f"{row['peer']}: {_cell(row['peer_wall_s'], row['peer_peak_mib'])}")
        ratio = "-" if row["wall_ratio"] is None else (
            f"{row['wall_ratio']:.2f}x wall, {row['memory_ratio']:.2f}x memory")
        met = {True: "yes", False: "no", None: "-"}[row["met"]]
        target = _target_text(row) + (f" ({row['note']})" if row["note"] else "")
        lines.append([row["work"], f"{row['kerastrain']}: "
                      f"{_cell(row['kerastrain_wall_s'], row['kerastrain_peak_mib'])}",
                      peer, ratio, target, met])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(out + ["| " + " | ".join(cells) + " |" for cells in lines])
    widths = [max(len(h), *(len(cells[i]) for cells in lines)) for i, h in enumerate(header)]
    text = [header] + lines
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                     for cells in text)


# -- the command ----------------------------------------------------------------------------

def _kerastrain_command(given: str | None) -> list[str]:
    if given:
        return shlex.split(given)
    found = shutil.which("kerastrain")
    return [found] if found else [sys.executable, "-m", "kerastrain"]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3,
                        help="rounds: each variant runs once per round (default 3)")
    parser.add_argument("--only", action="append", choices=COMPARISONS,
                        help="run only this comparison (repeatable; default: all)")
    parser.add_argument("--workers", default="1,default",
                        help="runtime.workers values for the k-fold comparison, comma-"
                             "separated; 'default' leaves the config's default (default: "
                             "1,default)")
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch, a tenth of the rows: checks the harness, measures nothing")
    parser.add_argument("--gpu", action="store_true",
                        help="mixed precision on both sides (runtime.dtype_policy="
                             "mixed_float16; DTYPE_POLICY for the peers)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra override for every kerastrain fit (repeatable)")
    parser.add_argument("--kerastrain", default=None,
                        help="the kerastrain command (default: kerastrain on PATH, else "
                             "python -m kerastrain)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the peer scripts (default: this one)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where data, run directories and logs go (default: a temporary "
                             "folder, removed afterwards)")
    parser.add_argument("--json", type=Path, default=None,
                        help="the raw numbers (default: benchmarks/results/compare-<time>.json)")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = parser.parse_args(argv)
    args.only = args.only or list(COMPARISONS)
    args.workers = [w.strip() for w in args.workers.split(",") if w.strip()]
    args.kerastrain = _kerastrain_command(args.kerastrain)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kerastrain-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started, load = time.strftime("%Y%m%d-%H%M%S"), os.getloadavg()
    try:
        prepare(work, args)
        chosen = comparisons(args, work)
        runs = run_all(chosen, args.pairs, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    rows = summarize(chosen, runs, args.quick)
    print(table(rows, args.markdown))
    meta = {"started": started, "argv": sys.argv, "pairs": args.pairs, "quick": args.quick,
            "gpu": args.gpu, "kerastrain": args.kerastrain, "python": args.python,
            "host": platform.node(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "load_average_start": load, "load_average_end":
            os.getloadavg()}
    finish(args.json or HERE / "results" / f"compare-{started}.json", meta, rows, runs)


def finish(path: Path, meta: dict, rows: list, runs: list) -> None:
    """The raw numbers saved as JSON at `path` (printed on stderr); exit 1 if a run failed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "summary": rows,
                                "runs": [asdict(r) for r in runs]}, indent=1) + "\n")
    print(f"raw numbers: {path}", file=sys.stderr)
    if any(r.returncode for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
