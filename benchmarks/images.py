"""The image-folder benchmark (issue 17): kerastrain streaming a folder of 20,000
generated 64x64 PNGs against a hand-written `keras.utils.image_dataset_from_directory`
script on the same CNN, 5 epochs, whole-process wall time and peak memory; and a K-fold
run over the same folder.

    python benchmarks/images.py --data /tmp/images64          # 3 rounds, then k-fold once
    python benchmarks/images.py --data /tmp/images64 --pairs 1 --only holdout
    python benchmarks/images.py --quick                        # 1,000 images, 1 epoch: a smoke run

The images are written once by peers/make_images.py into `--data` (kept between runs;
about 20 s). Each round runs kerastrain, then the script, one after the other (the
harness of compare.py: medians of alternating runs, peak memory from `ru_maxrss`), in
two forms: `steps_per_execution` 32 (kerastrain's default; the target's peer) and 1
(Keras's default, as scripts are usually written). The
k-fold run (3 folds, 1 epoch each, refit off) is measured once and judged only on
finishing. Targets: wall time at most 1.0x the script's, peak memory at most 1.1x.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_compare", HERE / "compare.py")
compare = importlib.util.module_from_spec(_spec)
sys.modules["bench_compare"] = compare
_spec.loader.exec_module(compare)

PEERS = HERE / "peers"
COMPARISONS = ("holdout", "kfold")
TUNED = "image_dataset_from_directory script, SPE=32"
PLAIN = "image_dataset_from_directory script, SPE=1"


def comparisons(args: argparse.Namespace, work: Path) -> list:
    """The comparisons asked for, with their command lines."""
    runs = ["--set", f"output.runs_dir={work / 'runs'}"]
    sets = [a for s in args.set for a in ("--set", s)]
    epochs = "1" if args.quick else str(args.epochs)
    config = str(work / "images.yaml")
    fit = [*args.kerastrain, "fit", config, "--quiet", *runs, "--set",
           f"training.epochs={epochs}"]
    count = f"{args.count:,} 64x64 PNGs"
    quick = " (--quick)" if args.quick else ""
    chosen = []
    if "holdout" in args.only:
        chosen.append(compare.Comparison(
            "images", f"CNN on {count}, {epochs} epochs, bs 32, Adam, 20% validation{quick}", [
                compare.Variant("kerastrain", [*fit, *sets], kerastrain=True),
                *[compare.Variant(label, [args.python, str(PEERS / "images_hand.py"),
                                          str(args.data)],
                                  {"EPOCHS": epochs, "SPE": spe,
                                   "OUT": str(work / f"hand{spe}.keras")})
                  for label, spe in ((TUNED, "32"), (PLAIN, "1"))]],
            [compare.Target("kerastrain", TUNED, 1.0, 1.1),
             compare.Target("kerastrain", PLAIN, 1.0, 1.1)]))
    if "kfold" in args.only:
        chosen.append(compare.Comparison(
            "ikfold", f"the same CNN, {count}, 3-fold, 1 epoch per fold, no refit{quick}", [
                compare.Variant("kerastrain", [
                    *args.kerastrain, "fit", config, "--quiet", *runs, "--set",
                    "training.epochs=1", "--set", "validation.scheme=kfold", "--set",
                    "validation.n_splits=3", "--set", "validation.refit=false", *sets],
                    kerastrain=True)],
            [compare.Target("kerastrain", None, float("inf"), None, "finishes")]))
    return chosen


def prepare(work: Path, args: argparse.Namespace) -> None:
    """The images (generated once into --data) and the config beside them."""
    subprocess.run([args.python, str(PEERS / "make_images.py"), str(args.data), "--count",
                    str(args.count)], check=True)
    text = (PEERS / "images.yaml").read_text().replace("path: images64",
                                                       f"path: {args.data.resolve()}")
    (work / "images.yaml").write_text(text)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="the image folder (made there when missing; default: one in "
                             "the work folder)")
    parser.add_argument("--count", type=int, default=20000, help="images (default 20000)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--only", action="append", choices=COMPARISONS)
    parser.add_argument("--quick", action="store_true",
                        help="1,000 images, 1 epoch: checks the harness, measures nothing")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--kerastrain", default=None)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    args.only = args.only or list(COMPARISONS)
    args.kerastrain = compare._kerastrain_command(args.kerastrain)
    if args.quick:
        args.count = min(args.count, 1000)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kerastrain-images-"))
    work.mkdir(parents=True, exist_ok=True)
    args.data = args.data or work / ("images64-quick" if args.quick else "images64")
    started = time.strftime("%Y%m%d-%H%M%S")
    try:
        prepare(work, args)
        chosen = comparisons(args, work)
        runs = []
        for comparison in chosen:
            pairs = args.pairs if comparison.name == "images" else 1
            runs += compare.run_all([comparison], pairs, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    rows = compare.summarize(chosen, runs, args.quick)
    print(compare.table(rows, args.markdown))
    compare.finish(args.json or HERE / "results" / f"images-{started}.json",
                   {"argv": sys.argv}, rows, runs)


if __name__ == "__main__":
    main()
