"""What a sweep found, told honestly: the best trial against the runner-up with the
corrected paired t-test of `kerastrain compare` (cross-validated trials: is the gap
beyond the noise of the folds?), Optuna's parameter importances, and a plot of the best
score so far against the epochs spent (`search.svg`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from kerastrain.compare import compare_runs
from kerastrain.errors import UserError
from kerastrain.rundir import write_text
from kerastrain.runs import metric_key
from kerastrain.sweep.manifest import Row

PLOT_FILE = "search.svg"


def winner(ranked: list[Row], metric: str) -> dict[str, Any] | None:
    """The best completed trial against the runner-up (`ranked`: best first). For
    cross-validation runs on the same folds, the corrected paired t-test between them;
    otherwise only the gap (a hold-out score has no folds to pair)."""
    scored = [r for r in ranked if r.status == "completed" and r.value is not None]
    if not scored:
        return None
    best = scored[0]
    found: dict[str, Any] = {"best": best.trial, "run_dir": best.run_dir, "value": best.value}
    if len(scored) < 2:
        return found
    runner = scored[1]
    found.update(runner_up=runner.trial, runner_up_value=runner.value,
                 gap=abs(best.value - runner.value))
    try:
        test = compare_runs(best.run_dir, runner.run_dir, metric_key(metric)[1])
    except UserError as exc:  # hold-out runs, or folds that differ
        found["test"] = None
        found["statement"] = (f"{best.trial} is best, {runner.trial} next ({found['gap']:.4g} "
                              f"apart); no paired test: {exc.render().splitlines()[0]}")
        return found
    found.update(test=test.to_json(), beyond_noise=test.significant)
    found["statement"] = (
        f"{best.trial} is best, {runner.trial} next: the gap is "
        f"{'beyond' if test.significant else 'within'} the noise of the folds "
        f"(corrected paired t-test, p = {test.p_value:.3g}). " if test.p_value is not None
        else f"{best.trial} is best, {runner.trial} next: ") + test.statement
    return found


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) over the completed trials; empty with
    fewer than 3 of them (or when they cannot be computed)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 3:  # Optuna would say "all equal", with a warning
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {k: round(float(v), 4) for k, v in
                    optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError):
        return {}


def curve(study: Any) -> list[dict[str, Any]]:
    """Per finished attempt, in the order they ended: its trial, state, value (a pruned
    one's last reported), the epochs it trained, the epochs spent so far and the best
    completed value so far."""
    from optuna.trial import TrialState

    ended = [t for t in study.get_trials(deepcopy=False)
             if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.datetime_complete]
    ended.sort(key=lambda t: t.datetime_complete)
    minimize = study.direction.name == "MINIMIZE"
    spent, best, points = 0, None, []
    for t in ended:
        value = t.value
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        spent += int(t.user_attrs.get("epochs") or 0)
        if t.state == TrialState.COMPLETE and value is not None and (
                best is None or (value < best if minimize else value > best)):
            best = value
        points.append({"trial": f"t{int(t.user_attrs.get('slot', t.number + 1)):03d}",
                       "state": t.state.name.lower(), "value": value,
                       "epochs": int(t.user_attrs.get("epochs") or 0), "spent": spent,
                       "best": best})
    return points


def plot(points: list[dict[str, Any]], metric: str, path: Path) -> None:
    """An SVG (no plotting package needed): each trial's score at the epochs spent when
    it ended (pruned ones hollow), and the best so far as a step line."""
    values = [p["value"] for p in points if p["value"] is not None]
    if not values:
        return
    width, height, pad = 640, 400, 50
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    most = max(p["spent"] for p in points) or 1

    def xy(spent: float, value: float) -> tuple[float, float]:
        return (pad + (width - 2 * pad) * spent / most,
                height - pad - (height - 2 * pad) * (value - low) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">epochs spent '
             f'(0 .. {most})</text>',
             f'<text x="12" y="{pad - 20}">{metric}: {low:.4g} .. {high:.4g}; line: best so '
             'far; hollow: pruned</text>']
    steps = []
    for p in points:
        if p["best"] is not None:
            x, y = xy(p["spent"], p["best"])
            steps.append(f"{x:.1f},{y:.1f}")
    if steps:
        parts.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="#1f77b4" '
                     'stroke-width="2"/>')
    for p in points:
        if p["value"] is None:
            continue
        x, y = xy(p["spent"], p["value"])
        fill = "none" if p["state"] == "pruned" else "#d62728"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{fill}" '
                     f'stroke="#d62728"><title>{p["trial"]} {p["state"]}: '
                     f'{p["value"]:.4g} after {p["epochs"]} epochs</title></circle>')
    parts.append("</svg>\n")
    write_text(path, "\n".join(parts))
