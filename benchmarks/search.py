"""Search that learns (issue 18): on the digits MLP over learning rate, units and dropout,
kerastrain's TPE search with Hyperband pruning against a 27-point grid (target: within 1%
of the grid's best validation loss, spending at most a third of its epochs: each search
runs with `--budget` a third of the grid's epochs unless --no-budget), one search per
seed, each beside Keras Tuner's Hyperband on the same space with the same seed; then two
`kerastrain sweep --storage` processes sharing one SQLite study (target: N trials
together, none twice).

    python benchmarks/search.py                 # 15 epochs, 20 TPE trials, seeds 0-4
    python benchmarks/search.py --search-args "--min-epochs 4"   # another first rung
    python benchmarks/search.py --seeds 0,1 --no-budget --search-args "--reduction-factor 3"
    python benchmarks/search.py --skip-tuner    # without Keras Tuner (the [bench] extra)

The grid runs through the CLI (`--jobs` lanes), each search through the CLI one trial at a
time (`--jobs 1`: the epochs it spends do not depend on which trial ends first); Keras
Tuner runs in this process on the same rows kerastrain trains and validates on (its
splits.json), rescaled the same way. Epochs spent: the grid's 27 x epochs; the search's
`epochs_spent` (sweep.json, pruned trials' epochs included); Keras Tuner's epochs counted
by a callback. Losses both ways for all three: the last epoch's validation loss (the
sweep's metric, the targets') and the best epoch's (Keras Tuner's score); Keras Tuner's
over its trials that trained to the last epoch, and again over those that ended within a
third of the grid's epochs (its budget follows from max_epochs and factor: 15 epochs,
factor 3 spends 166, factor 4 spends 91). The searches' figures do not depend on the
folder (`--out`): Hyperband's brackets are drawn from the seed. They land in
`--out`/search.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

LR = "compile.optimizer.learning_rate"
UNITS = "model.layers.0.units"
DROPOUT = "model.layers.1.rate"
GRID = {LR: ["0.0003", "0.003", "0.03"], UNITS: ["32", "96", "256"],
        DROPOUT: ["0.0", "0.2", "0.4"]}
SPACE = {LR: "loguniform:1e-4,1e-1", UNITS: "int:16,256", DROPOUT: "uniform:0.0,0.5"}


def config(where: Path, epochs: int) -> Path:
    cfg = {"name": "digits-search", "seed": 0,
           "data": {"source": {"type": "sklearn", "name": "digits"}, "target": "target",
                    "task": "classification",
                    "preprocessing": {"numeric": "none", "rescale": 0.0625}},
           "model": {"layers": [{"type": "Dense", "units": 64, "activation": "relu"},
                                {"type": "Dropout", "rate": 0.2},
                                {"type": "Dense", "units": 10, "activation": "softmax"}]},
           "compile": {"optimizer": {"type": "Adam", "learning_rate": 0.01},
                       "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
           "training": {"epochs": epochs, "batch_size": 32},
           "validation": {"scheme": "holdout", "validation_split": 0.2, "test_split": 0.2,
                          "stratify": True},
           "output": {"runs_dir": str(where / "runs"), "plots": False,
                      "tensorboard": False}}
    path = where / "digits.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def sweep(args: list[str]) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kerastrain", "sweep", *args, "--json"],
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"kerastrain sweep {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), took


def best(result: dict) -> float:
    """The lowest validation loss of a completed trial's last epoch (the sweep's metric)."""
    return min(t["metric"] for t in result["trials"] if t["status"] == "completed")


def best_epoch(result: dict) -> float:
    """The lowest validation loss of any epoch of a completed trial (history.csv)."""
    def lowest(run_dir: str) -> float:
        lines = (Path(run_dir) / "history.csv").read_text().split()
        column = lines[0].split(",").index("val_loss")
        return min(float(line.split(",")[column]) for line in lines[1:])

    return min(lowest(t["run_dir"]) for t in result["trials"] if t["status"] == "completed")


def keras_tuner(runs: Path, epochs: int, seed: int, factor: int, budget: int) -> dict:
    """Keras Tuner's Hyperband on the rows of one of kerastrain's runs. Its losses as
    kerastrain's are read: over the trials that trained to the last epoch (`full`), the
    last epoch's validation loss (`last_epoch`, kerastrain's metric) and the best epoch's
    (`best_epoch`, Keras Tuner's own score); both again over the full trials that ended
    within `budget` epochs (its Hyperband's budget follows from max_epochs and factor)."""
    import keras
    import keras_tuner as kt
    import numpy as np
    from sklearn.datasets import load_digits

    run = next(p for p in runs.iterdir() if (p / "splits.json").is_file())
    splits = json.loads((run / "splits.json").read_text())
    fold = splits["folds"][0]
    x, y = load_digits(return_X_y=True)
    x = (x * 0.0625).astype("float32")
    train, valid = np.array(fold["train"]), np.array(fold["validation"])
    spent, full = [0], []  # epochs so far; (spent, last, best) of each full trial

    class Count(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.losses = []

        def on_epoch_end(self, epoch, logs=None):
            spent[0] += 1
            self.losses.append(float(logs["val_loss"]))

        def on_train_end(self, logs=None):
            if self.params["epochs"] == epochs and self.losses:
                full.append((spent[0], self.losses[-1], min(self.losses)))

    def build(hp):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(hp.Int("units", 16, 256), activation="relu"),
            keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5)),
            keras.layers.Dense(10, activation="softmax")])
        model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-1, sampling="log")),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    start = time.perf_counter()
    tuner = kt.Hyperband(build, objective="val_loss", max_epochs=epochs, factor=factor,
                         seed=seed, directory=str(runs.parent / "kt"),
                         project_name=f"digits-{seed}-{factor}", overwrite=True)
    tuner.search(x[train], y[train], validation_data=(x[valid], y[valid]), batch_size=32,
                 callbacks=[Count()], verbose=0)
    took = time.perf_counter() - start
    within = [f for f in full if f[0] <= budget]
    return {"factor": factor, "epochs": spent[0], "trials": len(tuner.oracle.trials),
            "full_trials": len(full), "score": float(tuner.oracle.get_best_trials(1)[0].score),
            "last_epoch": min(f[1] for f in full), "best_epoch": min(f[2] for f in full),
            "within_budget": {"full_trials": len(within),
                              "last_epoch": min((f[1] for f in within), default=None),
                              "best_epoch": min((f[2] for f in within), default=None)},
            "wall_s": round(took, 1)}


def shared(where: Path, trials: int) -> dict:
    """Two sweep processes on one SQLite study."""
    cfg = config(where, 3)
    storage = f"sqlite:///{where / 'shared.db'}"
    command = [sys.executable, "-m", "kerastrain", "sweep", str(cfg), "--search", "tpe",
               "--trials", str(trials), "--seed", "0", "--storage", storage, "--json",
               *[part for key, dist in SPACE.items() for part in ("--param", f"{key}={dist}")]]
    start = time.perf_counter()
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    codes = [p.wait() for p in procs]
    took = time.perf_counter() - start
    import optuna

    (sweep_dir,) = (where / "runs" / "sweeps").iterdir()
    name = json.loads((sweep_dir / "sweep.json").read_text())["study"]
    study = optuna.load_study(study_name=name, storage=storage)
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    runs = [p for p in (where / "runs").iterdir() if (p / "run.json").is_file()]
    return {"exit_codes": codes, "trials": trials, "completed": len(done),
            "distinct_slots": len({t.user_attrs["slot"] for t in done}),
            "run_dirs": len(runs), "per_process": sorted(
                sum(t.user_attrs["pid"] == p.pid for t in done) for p in procs),
            "wall_s": round(took, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", default="0,1,2,3,4",
                        help="the search's seeds, one search each")
    parser.add_argument("--jobs", type=int, default=2, help="the grid's --jobs")
    parser.add_argument("--prune", default="hyperband")
    parser.add_argument("--search-args", default="", help="more `kerastrain sweep` options "
                        "for the search (e.g. '--min-epochs 2 --reduction-factor 3')")
    parser.add_argument("--tuner-factors", default="3,4", help="Keras Tuner's Hyperband "
                        "factors, one run each (15 epochs: 3 spends 166, 4 spends 91)")
    parser.add_argument("--no-budget", dest="budget", action="store_false",
                        help="run the searches without --budget (a third of the grid's "
                        "epochs, by default)")
    parser.add_argument("--skip-tuner", action="store_true")
    parser.add_argument("--skip-shared", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    where = Path(args.out or Path(tempfile.gettempdir()) / "kerastrain-search")
    if (where / "digits.yaml").is_file():  # an earlier run of this benchmark: start afresh
        shutil.rmtree(where)
    where.mkdir(parents=True, exist_ok=True)
    cfg = config(where, args.epochs)
    figures: dict = {"epochs": args.epochs, "jobs": args.jobs, "searches": []}
    grid, took = sweep([str(cfg), "--jobs", str(args.jobs),
                        *[part for key, values in GRID.items()
                          for part in ("--grid", f"{key}={','.join(values)}")]])
    figures["grid"] = {"trials": 27, "best_val_loss": best(grid),
                       "best_epoch_val_loss": best_epoch(grid),
                       "epochs": 27 * args.epochs, "wall_s": round(took, 1)}
    print("grid", figures["grid"], flush=True)
    budget, target = figures["grid"]["epochs"], figures["grid"]["best_val_loss"]
    for seed in [int(s) for s in args.seeds.split(",")]:
        # One trial at a time: what each trial learns from, and so the epochs the search
        # spends, do not depend on which trial ends first.
        search, took = sweep([str(cfg), "--search", "tpe", "--trials", str(args.trials),
                              "--prune", args.prune, "--seed", str(seed), "--jobs", "1",
                              *(["--budget", str(budget // 3)] if args.budget else []),
                              *shlex.split(args.search_args),
                              *[part for key, dist in SPACE.items()
                                for part in ("--param", f"{key}={dist}")]])
        record = json.loads((Path(search["sweep_dir"]) / "sweep.json").read_text())
        found = {"seed": seed, "trials": args.trials, "prune": args.prune,
                 "best_val_loss": best(search), "best_epoch_val_loss": best_epoch(search),
                 "epochs": record["epochs_spent"],
                 "pruned": search["pruned"], "wall_s": round(took, 1),
                 "importances": record["importances"]}
        # As a search stopped at a third of the grid's epochs would end (one trial at a
        # time: the trials that ended by then, in order), as Keras Tuner's within_budget.
        ended = [c["value"] for c in record["curve"]
                 if c["state"] == "complete" and 3 * c["spent"] <= budget]
        found["within_budget"] = min(ended, default=None)
        found["gap_pct"] = round(100 * (found["best_val_loss"] / target - 1), 1)
        found["epochs_share"] = round(found["epochs"] / budget, 3)
        found["targets_met"] = found["gap_pct"] <= 1 and found["epochs"] * 3 <= budget
        print("tpe", found, flush=True)
        for factor in [] if args.skip_tuner else map(int, args.tuner_factors.split(",")):
            tuner = keras_tuner(where / "runs", args.epochs, seed, factor, budget // 3)
            tuner["gap_pct"] = round(100 * (tuner["last_epoch"] / target - 1), 1)
            tuner["epochs_share"] = round(tuner["epochs"] / budget, 3)
            found[f"keras_tuner_factor_{factor}"] = tuner
            print(f"keras-tuner factor {factor}", tuner, flush=True)
        figures["searches"].append(found)
    if not args.skip_shared:
        (where / "shared").mkdir(exist_ok=True)
        figures["shared_study"] = shared(where / "shared", 8)
        print("shared", figures["shared_study"], flush=True)
    (where / "search.json").write_text(json.dumps(figures, indent=2))
    print(f"figures: {where / 'search.json'}")


if __name__ == "__main__":
    main()
