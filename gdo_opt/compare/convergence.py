"""Convergence analysis of two training runs: final deltas, peak match and data reduction.

GDO's claim is read off two learning curves (accuracy vs training samples seen) of the same recipe:
a GDO 1x run and a baseline (Uni-10x). Definitions (docs/comparison.md):

- reference: the baseline's best accuracy over all its checkpoints (the paper's "Peak Match" column).
- peak match: the first training-sample count at which the run reaches the reference; reaching it
  exactly counts (ties match). Only evaluated checkpoints count, so this is a checkpoint-granular,
  conservative number. ``None`` (shown as "not reached") if no checkpoint reaches it.
- interpolated match: a separate, optional field: the crossing point of the straight line between
  the last checkpoint below the reference and the first one reaching it. Nothing is extrapolated
  before the first evaluated checkpoint (its own sample count is returned when it already matches).
- reduction: baseline samples / peak match, where baseline samples are the samples the baseline
  saw in total (its last checkpoint), e.g. 512k / 35.4k = 14.5x.

Tidy tables (``gdo-opt eval`` output) have columns run, checkpoint, samples_seen, task, subtask,
metric, accuracy; ``subtask == ""`` is the benchmark's own (aggregate) score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gdo_opt.errors import GdoError

TIDY_COLUMNS = ("run", "checkpoint", "samples_seen", "task", "subtask", "metric", "accuracy")
# Accuracies are floats parsed from JSON; a reference reached up to this slack counts as a tie.
TIE_TOLERANCE = 1e-9


def _curve(samples, accuracy) -> tuple[np.ndarray, np.ndarray]:
    """Validate and sort one learning curve by samples (stable, so equal counts keep their order)."""
    s = np.asarray(samples, dtype=np.float64).ravel()
    a = np.asarray(accuracy, dtype=np.float64).ravel()
    if s.shape != a.shape:
        raise GdoError(f"samples ({s.size}) and accuracy ({a.size}) differ in length")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise GdoError("samples must be finite and >= 0")
    keep = np.isfinite(a)  # a checkpoint whose evaluation failed has NaN accuracy: it cannot match
    order = np.argsort(s[keep], kind="stable")
    return s[keep][order], a[keep][order]


def _as_number(value: float) -> int | float:
    """Sample counts are integers in practice; keep them so in JSON and messages."""
    return int(value) if float(value).is_integer() else float(value)


def peak_match(samples, accuracy, reference: float) -> int | float | None:
    """First training-sample count whose checkpoint reaches ``reference`` (ties count); None if never."""
    s, a = _curve(samples, accuracy)
    hit = np.flatnonzero(a >= reference - TIE_TOLERANCE)
    return _as_number(s[hit[0]]) if hit.size else None


def interpolated_match(samples, accuracy, reference: float) -> float | None:
    """Linear crossing point between the checkpoints around the first match; None if never reached.

    When the first evaluated checkpoint already matches, its sample count is returned: the curve
    before it is unknown, so nothing is extrapolated.
    """
    s, a = _curve(samples, accuracy)
    hit = np.flatnonzero(a >= reference - TIE_TOLERANCE)
    if not hit.size:
        return None
    i = int(hit[0])
    if i == 0 or a[i] <= a[i - 1] or s[i] == s[i - 1]:
        return float(s[i])
    frac = (reference - a[i - 1]) / (a[i] - a[i - 1])
    return float(s[i - 1] + min(max(frac, 0.0), 1.0) * (s[i] - s[i - 1]))


def reduction(baseline_samples: float, peak: float | None) -> float | None:
    """Data reduction factor baseline_samples / peak (e.g. 512k / 35.4k = 14.5x); None if not reached.

    ``match_curves`` also reports None for a match at 0 samples (an untrained checkpoint already at the
    reference): the factor would be infinite and JSON cannot hold it.
    """
    if peak is None:
        return None
    if not baseline_samples > 0:
        raise GdoError(f"baseline samples must be > 0, got {baseline_samples}")
    if not peak > 0:
        raise GdoError(f"peak match must be > 0 samples, got {peak}")
    return float(baseline_samples) / float(peak)


@dataclass(frozen=True)
class PeakMatch:
    """Peak-match result for one benchmark (or subtask); None fields mean "not reached"."""

    task: str
    subtask: str
    reference: float  # baseline's best accuracy over its checkpoints
    baseline_peak_samples: int | float  # where the baseline first reached its best
    baseline_samples: int | float  # baseline's total samples (its last checkpoint)
    peak_match: int | float | None
    interpolated_match: float | None
    reduction: float | None
    interpolated_reduction: float | None

    @property
    def reached(self) -> bool:
        return self.peak_match is not None


def match_curves(run_samples, run_accuracy, base_samples, base_accuracy, task: str = "",
                 subtask: str = "") -> PeakMatch:
    """Peak match of a run against a baseline curve (reference = baseline's best checkpoint)."""
    bs, ba = _curve(base_samples, base_accuracy)
    if not bs.size:
        raise GdoError(f"baseline has no evaluated checkpoint for {task or 'the benchmark'}")
    reference = float(ba.max())
    baseline_total = float(bs.max())
    peak = peak_match(run_samples, run_accuracy, reference)
    interp = interpolated_match(run_samples, run_accuracy, reference)
    return PeakMatch(
        task=task,
        subtask=subtask,
        reference=reference,
        baseline_peak_samples=_as_number(bs[int(np.argmax(ba))]),
        baseline_samples=_as_number(baseline_total),
        peak_match=peak,
        interpolated_match=interp,
        reduction=reduction(baseline_total, peak) if peak else None,
        interpolated_reduction=reduction(baseline_total, interp) if interp else None,
    )


# ---------------------------------------------------------------------------------------------
# Tidy tables


def load_results(path: str | Path) -> pd.DataFrame:
    """Read a tidy results table (CSV or Parquet, or a ``gdo-opt eval`` output folder)."""
    path = Path(path)
    if path.is_dir():
        for name in ("results.parquet", "results.csv"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise GdoError(f"{path}: no results.parquet or results.csv (run `gdo-opt eval` first)")
    if not path.is_file():
        raise GdoError(f"{path}: no such results table")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        elif path.suffix == ".csv":
            table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"subtask": str})
        else:
            raise GdoError(f"{path}: expected a .csv or .parquet results table")
    except GdoError:
        raise
    except Exception as error:  # pyarrow / pandas parse errors
        raise GdoError(f"{path}: cannot read results table: {error}") from None
    missing = [c for c in TIDY_COLUMNS if c not in table.columns]
    if missing:
        raise GdoError(f"{path}: missing column(s) {', '.join(missing)}")
    table = table.loc[:, list(TIDY_COLUMNS)].copy()
    for column in ("run", "checkpoint", "task", "subtask", "metric"):
        table[column] = table[column].fillna("").astype(str)
    table["samples_seen"] = pd.to_numeric(table["samples_seen"], errors="coerce")
    table["accuracy"] = pd.to_numeric(table["accuracy"], errors="coerce")
    if table["samples_seen"].isna().any():
        raise GdoError(f"{path}: samples_seen has empty or non-numeric values")
    for column in ("samples_seen", "accuracy"):  # NaN = a failed evaluation; ±inf is never an accuracy
        inf = np.isinf(table[column].to_numpy(dtype=np.float64))
        if inf.any():
            row = int(np.flatnonzero(inf)[0]) + 1
            raise GdoError(f"{path}: column {column}, row {row}: value {table[column].iat[row - 1]} is not finite")
    return table


def _one_run(table: pd.DataFrame, label: str) -> tuple[str, pd.DataFrame]:
    runs = sorted(table["run"].unique())
    if len(runs) != 1:
        raise GdoError(f"{label}: expected one run in the table, found {len(runs)} ({', '.join(runs)})")
    if table.empty:
        raise GdoError(f"{label}: the results table is empty")
    return runs[0], table


def final_deltas(run: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Final-checkpoint accuracy of each run per (task, subtask) and the delta run - baseline."""

    def final(table: pd.DataFrame) -> pd.DataFrame:
        last = table.sort_values(["task", "subtask", "samples_seen"], kind="stable")
        return last.groupby(["task", "subtask"], sort=True).tail(1).set_index(["task", "subtask"])

    a, b = final(run), final(baseline)
    out = pd.DataFrame({
        "run_accuracy": a["accuracy"],
        "run_samples": a["samples_seen"],
        "baseline_accuracy": b["accuracy"],
        "baseline_samples": b["samples_seen"],
    })
    out["delta"] = out["run_accuracy"] - out["baseline_accuracy"]
    return out.reset_index().sort_values(["task", "subtask"], kind="stable").reset_index(drop=True)


def peak_matches(run: pd.DataFrame, baseline: pd.DataFrame, subtasks: bool = True) -> list[PeakMatch]:
    """Peak match per benchmark (and per subtask when asked) present in both runs."""
    keys = sorted(set(zip(run["task"], run["subtask"])) & set(zip(baseline["task"], baseline["subtask"])))
    results = []
    for task, subtask in keys:
        if subtask and not subtasks:
            continue
        r = run[(run["task"] == task) & (run["subtask"] == subtask)]
        b = baseline[(baseline["task"] == task) & (baseline["subtask"] == subtask)]
        if b["accuracy"].notna().any():
            results.append(match_curves(r["samples_seen"], r["accuracy"], b["samples_seen"], b["accuracy"],
                                        task=task, subtask=subtask))
    return results


def _clean(value):
    """JSON-safe numbers: NaN -> None, numpy scalars -> Python."""
    if value is None:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else _as_number(float(value))
    return value


def compare_tables(run: pd.DataFrame, baseline: pd.DataFrame) -> dict:
    """JSON-ready summary: final deltas and peak match / reduction per benchmark and subtask."""
    run_name, run = _one_run(run, "run")
    base_name, baseline = _one_run(baseline, "baseline")
    common = set(run["task"]) & set(baseline["task"])
    if not common:
        raise GdoError(f"run {run_name} and baseline {base_name} have no task in common (run: "
                       f"{', '.join(sorted(set(run['task'])))}; baseline: {', '.join(sorted(set(baseline['task'])))})")
    deltas = final_deltas(run, baseline)
    matches = peak_matches(run, baseline)
    return {
        "run": run_name,
        "baseline": base_name,
        "definitions": {
            "reference": "baseline's best accuracy over its checkpoints",
            "peak_match": "first checkpoint's samples_seen with accuracy >= reference (ties count)",
            "interpolated_match": "linear crossing between the checkpoints around the first match",
            "reduction": "baseline total samples / peak_match",
        },
        "final": [{k: _clean(v) for k, v in row.items()} for row in deltas.to_dict(orient="records")],
        "peak_match": [{k: _clean(v) for k, v in asdict(m).items()} | {"reached": m.reached} for m in matches],
    }


def _samples_label(value: float, _pos=None) -> str:
    """Axis ticks like 35.4k / 1.2M."""
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def plot_curves(run: pd.DataFrame, baseline: pd.DataFrame, path: str | Path, run_label: str = "",
                baseline_label: str = "") -> Path:
    """Accuracy vs training samples of both runs, one panel per benchmark (paper's Figure 1 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from gdo_opt.atomic import atomic_path

    run_label = run_label or str(run["run"].iloc[0])
    baseline_label = baseline_label or str(baseline["run"].iloc[0])
    tasks = sorted(set(run.loc[run["subtask"] == "", "task"]) | set(baseline.loc[baseline["subtask"] == "", "task"]))
    if not tasks:
        raise GdoError("nothing to plot: no benchmark-level rows (subtask == '') in either table")
    matches = {m.task: m for m in peak_matches(run, baseline, subtasks=False)}
    cols = min(len(tasks), 4)
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, task in zip(axes.ravel(), tasks):
        for table, label, style in ((baseline, baseline_label, "s--"), (run, run_label, "o-")):
            curve = table[(table["task"] == task) & (table["subtask"] == "")].sort_values("samples_seen")
            if not curve.empty:
                ax.plot(curve["samples_seen"], curve["accuracy"], style, label=label, markersize=4)
        m = matches.get(task)
        if m is not None:
            ax.axhline(m.reference, color="grey", linewidth=0.8, linestyle=":")
            if m.peak_match is not None:
                ax.axvline(m.peak_match, color="grey", linewidth=0.8, linestyle=":")
                ax.set_title(f"{task}\npeak match {m.peak_match:,.0f} ({m.reduction:.1f}x)", fontsize=9)
            else:
                ax.set_title(f"{task}\npeak match: not reached", fontsize=9)
        else:
            ax.set_title(task, fontsize=9)
        xs = np.concatenate([t.loc[(t["task"] == task) & (t["subtask"] == ""), "samples_seen"].to_numpy(float)
                             for t in (run, baseline)])
        xs = xs[xs > 0]
        if xs.size and xs.max() / xs.min() > 20:  # 1x vs 10x runs span decades: log axis keeps both readable
            ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_samples_label))
        ax.set_xlabel("training samples")
        ax.set_ylabel("accuracy")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(tasks):]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        # No Software/date metadata: same tables -> same bytes.
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def compare_runs(run_path: str | Path, baseline_path: str | Path, out_dir: str | Path) -> dict:
    """Compare two runs' tidy tables; write comparison.json, final_deltas.csv and curves.png to out_dir."""
    from gdo_opt.atomic import atomic_open, write_json

    run = load_results(run_path)
    baseline = load_results(baseline_path)
    summary = compare_tables(run, baseline)
    out_dir = Path(out_dir)
    write_json(out_dir / "comparison.json", summary)
    with atomic_open(out_dir / "final_deltas.csv") as handle:
        final_deltas(run, baseline).to_csv(handle, index=False, lineterminator="\n")
    plot_curves(run, baseline, out_dir / "curves.png")
    return summary
