"""Convergence maths on hand-made curves: ties, never reached, interpolation, reduction, compare."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gdo_opt.compare.convergence import (
    compare_runs,
    compare_tables,
    final_deltas,
    interpolated_match,
    load_results,
    match_curves,
    peak_match,
    reduction,
)
from gdo_opt.errors import GdoError


def test_peak_match_first_checkpoint_reaching_reference():
    samples = [10_000, 20_000, 30_000, 40_000]
    acc = [0.40, 0.50, 0.62, 0.70]
    assert peak_match(samples, acc, 0.60) == 30_000
    assert peak_match(samples, acc, 0.30) == 10_000


def test_peak_match_tie_counts_and_unsorted_input():
    # Exactly reaching the reference is a match; input order does not matter.
    assert peak_match([30, 10, 20], [0.6, 0.4, 0.55], 0.55) == 20
    # Float noise from JSON parsing still counts as a tie.
    assert peak_match([1, 2], [0.1, 0.3 - 1e-12], 0.3) == 2


def test_peak_match_never_reached_is_none():
    assert peak_match([1, 2, 3], [0.1, 0.2, 0.29], 0.3) is None
    assert interpolated_match([1, 2, 3], [0.1, 0.2, 0.29], 0.3) is None
    assert reduction(512_000, None) is None


def test_peak_match_ignores_failed_checkpoints():
    assert peak_match([1, 2, 3], [np.nan, 0.5, 0.7], 0.6) == 3


def test_peak_match_not_monotone_returns_first_crossing():
    # Accuracy crosses, dips and recovers: the first crossing is the match.
    assert peak_match([1, 2, 3, 4], [0.2, 0.61, 0.4, 0.9], 0.6) == 2


def test_interpolated_match_linear_between_checkpoints():
    # 0.5 at 20k, 0.7 at 40k; reference 0.6 is crossed half-way -> 30k.
    assert interpolated_match([20_000, 40_000], [0.5, 0.7], 0.6) == pytest.approx(30_000)
    # Quarter of the way.
    assert interpolated_match([0, 100], [0.0, 1.0], 0.25) == pytest.approx(25.0)
    # Tie at a checkpoint: the checkpoint itself.
    assert interpolated_match([10, 20, 30], [0.1, 0.5, 0.9], 0.5) == pytest.approx(20.0)


def test_interpolated_match_no_extrapolation_before_first_checkpoint():
    assert interpolated_match([5_000, 10_000], [0.8, 0.9], 0.6) == 5_000.0


def test_reduction_paper_example_and_errors():
    assert reduction(512_000, 35_400) == pytest.approx(14.46, abs=0.01)
    with pytest.raises(GdoError):
        reduction(0, 10)
    with pytest.raises(GdoError):
        reduction(100, 0)


def test_curve_validation():
    with pytest.raises(GdoError, match="differ in length"):
        peak_match([1, 2], [0.1], 0.5)
    with pytest.raises(GdoError, match=">= 0"):
        peak_match([-1, 2], [0.1, 0.2], 0.5)


def test_match_curves_reference_is_baseline_best():
    m = match_curves(
        run_samples=[1_000, 2_000, 3_000],
        run_accuracy=[0.50, 0.66, 0.70],
        base_samples=[10_000, 20_000, 40_000],
        base_accuracy=[0.55, 0.65, 0.64],  # best is the middle checkpoint
        task="mvbench",
    )
    assert m.reference == pytest.approx(0.65)
    assert m.baseline_peak_samples == 20_000
    assert m.baseline_samples == 40_000
    assert m.peak_match == 2_000
    assert m.reduction == pytest.approx(20.0)
    assert m.interpolated_match == pytest.approx(1_000 + 1_000 * 0.15 / 0.16)
    assert m.reached


def _table(run, rows):
    return pd.DataFrame(
        [
            {"run": run, "checkpoint": f"checkpoint-{s}", "samples_seen": s, "task": t, "subtask": st,
             "metric": "acc", "accuracy": a}
            for s, t, st, a in rows
        ]
    )


@pytest.fixture
def two_runs():
    gdo = _table("gdo-1x", [
        (100, "mvbench", "", 0.40), (200, "mvbench", "", 0.55), (300, "mvbench", "", 0.60),
        (100, "mvbench", "action", 0.30), (200, "mvbench", "action", 0.50), (300, "mvbench", "action", 0.70),
        (100, "lvbench", "", 0.20), (200, "lvbench", "", 0.25), (300, "lvbench", "", 0.28),
    ])
    uni = _table("uni-10x", [
        (1000, "mvbench", "", 0.45), (2000, "mvbench", "", 0.55), (3000, "mvbench", "", 0.52),
        (1000, "mvbench", "action", 0.40), (2000, "mvbench", "action", 0.60), (3000, "mvbench", "action", 0.65),
        (1000, "lvbench", "", 0.30), (2000, "lvbench", "", 0.31), (3000, "lvbench", "", 0.35),
    ])
    return gdo, uni


def test_final_deltas(two_runs):
    gdo, uni = two_runs
    d = final_deltas(gdo, uni).set_index(["task", "subtask"])
    assert d.loc[("mvbench", ""), "delta"] == pytest.approx(0.08)
    assert d.loc[("mvbench", "action"), "delta"] == pytest.approx(0.05)
    assert d.loc[("lvbench", ""), "delta"] == pytest.approx(-0.07)
    assert d.loc[("lvbench", ""), "run_samples"] == 300


def test_compare_tables_peak_match_and_not_reached(two_runs):
    gdo, uni = two_runs
    summary = compare_tables(gdo, uni)
    by = {(m["task"], m["subtask"]): m for m in summary["peak_match"]}
    mv = by[("mvbench", "")]
    assert mv["reference"] == pytest.approx(0.55)
    assert mv["peak_match"] == 200  # tie with the baseline's best counts
    assert mv["reduction"] == pytest.approx(15.0)
    assert mv["reached"] is True
    lv = by[("lvbench", "")]
    assert lv["peak_match"] is None and lv["reduction"] is None and lv["reached"] is False
    assert by[("mvbench", "action")]["peak_match"] == 300
    json.dumps(summary, allow_nan=False)  # JSON-safe


def test_compare_runs_writes_outputs_deterministically(tmp_path, two_runs):
    gdo, uni = two_runs
    gdo.to_csv(tmp_path / "gdo.csv", index=False)
    (tmp_path / "uni").mkdir()
    uni.to_parquet(tmp_path / "uni" / "results.parquet", index=False)
    out1, out2 = tmp_path / "c1", tmp_path / "c2"
    compare_runs(tmp_path / "gdo.csv", tmp_path / "uni", out1)
    compare_runs(tmp_path / "gdo.csv", tmp_path / "uni", out2)
    for name in ("comparison.json", "final_deltas.csv", "curves.png"):
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
    assert (out1 / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out1 / "comparison.json").read_text())
    assert summary["run"] == "gdo-1x" and summary["baseline"] == "uni-10x"


def test_load_results_errors(tmp_path):
    with pytest.raises(GdoError, match="no results.parquet"):
        load_results(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("run,task\nx,y\n")
    with pytest.raises(GdoError, match="missing column"):
        load_results(bad)


def test_compare_rejects_mixed_runs(two_runs):
    gdo, uni = two_runs
    with pytest.raises(GdoError, match="expected one run"):
        compare_tables(pd.concat([gdo, uni]), uni)
