"""How much does exact selection gain over greedy? Sweep families × sizes × presets × seeds (issues 8, 15).

    .venv/bin/python experiments/exact_vs_greedy.py
    .venv/bin/python experiments/exact_vs_greedy.py --sizes 10000,100000 --seeds 0 --presets temp
    .venv/bin/python experiments/exact_vs_greedy.py --families hard --sizes 1000000 --seeds 0

``--families near,hard``: the near-integral GDO-shaped family (one row per preset) and the hard
one of issue 15 (knapsack + covering rows, tight quotas; presets do not apply, K = N/50).
Every row records the 1-minute load average before and after its solve.

For every (N, preset, seed) it solves the same instance with ``auto`` (exact, certified gap),
``greedy`` (plain score order + repair + exchanges; its LP bound gives the certified gap) and
``greedy_lp`` (the same plus the LP-guided second pass), each in its own subprocess (peak memory
= ru_maxrss of that process, instance build included), and records solver, objective, bound,
gap, seconds, peak memory, violations, objective ratio to exact and the Jaccard overlap with the
exact subset.
Writes experiments/out/exact_vs_greedy.csv, a per-(N, preset) summary CSV and
experiments/out/exact_vs_greedy.png (objective ratio and time vs N, one line per preset).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._common import pyplot, save_figure  # noqa: E402
from experiments.bench_solvers import OUT, run_one, write_csv  # noqa: E402

FIELDS = ["family", "n", "k", "preset", "seed", "solver", "status", "objective", "bound", "gap", "solve_s",
          "build_s", "peak_gb", "violations", "ratio", "jaccard", "selected", "load_before", "load_after"]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.union1d(a, b).size
    return float(np.intersect1d(a, b).size / union) if union else 1.0


GREEDY_VARIANTS = {"greedy": {"guided": False}, "greedy_lp": {"guided": True}}


def sweep(sizes, presets, seeds, time_limit: float, families=("near",)) -> list[dict]:
    """auto (exact) and both greedy variants on every (family, N, preset, seed); one subprocess each."""
    rows = []
    for family, n, preset in [(f, n, p) for f in families for n in sizes
                              for p in (presets if f == "near" else ["-"])]:
        for seed in seeds:
            exact = run_one(n, "auto", seed=seed, preset=preset, time_limit=time_limit, keep_indices=True,
                            family=family)
            exact_ok = exact.get("status") in ("optimal", "feasible")
            exact.update(ratio=1.0 if exact_ok else float("nan"), jaccard=1.0)
            line = [f"{family} {n:>9,} {preset:>9} seed {seed}: exact {exact.get('objective', float('nan')):.6g} "
                    f"({exact.get('solve_s', float('nan')):.2f}s, gap {exact.get('gap', float('nan')):.1e})"]
            found = [exact]
            for label, extra in GREEDY_VARIANTS.items():
                row = run_one(n, "greedy", seed=seed, preset=preset, time_limit=time_limit, extra=extra,
                              keep_indices=True, family=family)
                row["solver"] = label
                ok = exact_ok and row.get("status") in ("optimal", "feasible")
                row["ratio"] = row["objective"] / exact["objective"] if ok else float("nan")
                row["jaccard"] = jaccard(exact["indices"], row["indices"]) if ok else float("nan")
                line.append(f"{label} {row['ratio']:.5f} ({row.get('solve_s', float('nan')):.2f}s, "
                            f"gap {row.get('gap', float('nan')):.1e}, J {row['jaccard']:.3f}, "
                            f"load {row.get('load_before', float('nan')):.1f})")
                found.append(row)
            for row in found:
                row.pop("indices", None)
                rows.append(row)
            print("; ".join(line), file=sys.stderr, flush=True)
    return rows


def summarize(rows: list[dict]) -> pd.DataFrame:
    """One row per (family, N, preset, solver): means over seeds (min for the ratio, max for gaps/memory)."""
    df = pd.DataFrame(rows)
    if "family" not in df:
        df["family"] = "near"
    for col in ("load_before", "load_after", "k"):
        if col not in df:
            df[col] = np.nan
    summary = df.groupby(["family", "n", "preset", "solver"]).agg(
        runs=("seed", "size"), k=("k", "first"), ratio_mean=("ratio", "mean"), ratio_min=("ratio", "min"),
        gap_mean=("gap", "mean"), gap_max=("gap", "max"), seconds=("solve_s", "mean"),
        peak_gb=("peak_gb", "max"), jaccard=("jaccard", "mean"), violations=("violations", "max"),
        load=("load_before", "mean"),
    )
    return summary.reset_index()


def plot(summary: pd.DataFrame, path: Path) -> None:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"auto": ("-", "o"), "greedy": ("--", "x"), "greedy_lp": (":", "s")}
    colors = {}
    for (family, preset, solver), part in summary.groupby(["family", "preset", "solver"]):
        preset = preset if family == "near" else family
        part = part.sort_values("n")
        ls, marker = styles.get(solver, ("-", "."))
        color = colors.setdefault(preset, f"C{len(colors)}")
        if solver != "auto":
            ax1.plot(part.n, 100 * part.ratio_mean, ls=ls, marker=marker, color=color, label=f"{preset} {solver}")
            ax1.fill_between(part.n, 100 * part.ratio_min, 100 * part.ratio_mean, color=color, alpha=0.12)
        ax2.plot(part.n, part.seconds, ls=ls, marker=marker, color=color, label=f"{preset} {solver}")
    ax1.set(xscale="log", xlabel="pool size N", ylabel="objective / exact objective (%)",
            title="greedy vs exact (mean; band down to the worst seed)")
    ax1.axhline(99.5, color="grey", lw=0.8, ls=":")
    ax2.set(xscale="log", yscale="log", xlabel="pool size N", ylabel="seconds (solve, incl. LP bound)",
            title="time vs N (auto = exact)")
    ax1.legend(fontsize=7, ncol=2)
    ax2.legend(fontsize=6, ncol=3)
    save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--families", default="near,hard", help="comma list of near, hard")
    parser.add_argument("--presets", default="minloss,diverse,temp,temp_plus")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--out", default=str(OUT / "exact_vs_greedy"))
    args = parser.parse_args(argv)
    rows = sweep([int(s) for s in args.sizes.split(",")], args.presets.split(","),
                 [int(s) for s in args.seeds.split(",")], args.time_limit, args.families.split(","))
    out = Path(args.out)
    write_csv(rows, out.with_suffix(".csv"), FIELDS)
    summary = summarize(rows)
    write_csv(summary.to_dict("records"), out.with_name(out.name + "_summary.csv"), list(summary.columns))
    plot(summary, out.with_suffix(".png"))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
