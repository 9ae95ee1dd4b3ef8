"""Sweeps: many runs of one config under different `--set` overrides (`kerastrain sweep`).

`space.py` turns `--grid` and `--random/--param` into trials, `manifest.py` keeps the sweep
directory (sweep.json, manifest.csv), `run.py` validates every trial, then trains, skips or
resumes each one, in this process, in worker processes or on Ray (`on_ray.py`); `trial.py`
is one trial, the only code that imports TensorFlow (inside `run_trial`)."""
