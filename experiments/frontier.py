"""The selection side of the paper's frontier figure: budgets × presets → ρ and the field shares.

    .venv/bin/python experiments/frontier.py
    .venv/bin/python experiments/frontier.py --n 30000 --budgets 0.01,0.02 --presets temp,minloss

For one pool size and seed, every preset (its share bounds and its score tilt, see
experiments/instances.py) is solved exactly (``auto``) at every budget K = fraction × N. Records
total and mean ρ, the certified gap, the video share, the temporal share within video, sources /
strata / videos used, and which share bounds bind. Writes experiments/out/frontier.csv and
experiments/out/frontier.png (mean ρ, video share and temporal share vs K, one line per preset).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._common import pyplot, save_figure  # noqa: E402
from experiments.bench_solvers import OUT, write_csv  # noqa: E402
from experiments.instances import PRESETS, make_instance  # noqa: E402

FIELDS = ["preset", "budget_frac", "k", "status", "objective", "mean_rho", "gap", "seconds", "video_share",
          "video_lo", "video_hi", "video_binds", "temporal_share_within_video", "temporal_floor",
          "temporal_binds", "temporal_share", "sources_used", "strata_used", "videos_used"]


def run(n: int, presets, budgets, seed: int, time_limit: float) -> list[dict]:
    rows = []
    for preset in presets:
        for frac in budgets:
            inst = make_instance(n, seed=seed, preset=preset, k_frac=frac)
            start = time.perf_counter()
            sel = inst.problem.solve("auto", time_limit=time_limit, seed=seed)
            seconds = time.perf_counter() - start
            shares = inst.shares(sel.indices)
            lo, hi = PRESETS[preset]["video_share"]
            floor = PRESETS[preset]["temporal"]
            row = dict(
                preset=preset, budget_frac=frac, k=inst.k, status=sel.status, objective=sel.objective,
                mean_rho=sel.objective / max(1, sel.indices.size), gap=sel.gap, seconds=seconds,
                video_lo=lo, video_hi=hi, temporal_floor=floor, **shares,
            )
            row["video_binds"] = ("lo" if abs(shares["video_share"] - lo) < 1.5 / inst.k else
                                  "hi" if abs(shares["video_share"] - hi) < 1.5 / inst.k else "")
            n_video = max(1, int(inst.is_video[sel.indices].sum()))
            row["temporal_binds"] = bool(abs(shares["temporal_share_within_video"] - floor) < 1.5 / n_video)
            rows.append(row)
            print(f"{preset:>9} K={inst.k:>6} ({frac:.3f}N): mean ρ {row['mean_rho']:.4f}, video "
                  f"{shares['video_share']:.3f} [{lo}, {hi}] {row['video_binds']}, temporal/video "
                  f"{shares['temporal_share_within_video']:.3f} (≥ {floor}), gap {sel.gap:.1e}, {seconds:.1f}s",
                  file=sys.stderr, flush=True)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for preset in dict.fromkeys(r["preset"] for r in rows):
        part = sorted((r for r in rows if r["preset"] == preset), key=lambda r: r["k"])
        k = np.array([r["k"] for r in part])
        line = axes[0].plot(k, [r["mean_rho"] for r in part], marker="o", label=preset)[0]
        color = line.get_color()
        axes[1].plot(k, [r["video_share"] for r in part], marker="o", color=color, label=preset)
        axes[1].fill_between(k, part[0]["video_lo"], part[0]["video_hi"], color=color, alpha=0.08)
        axes[2].plot(k, [r["temporal_share_within_video"] for r in part], marker="o", color=color, label=preset)
        axes[2].axhline(part[0]["temporal_floor"], color=color, ls=":", lw=0.9)
    axes[0].set(xscale="log", xlabel="budget K", ylabel="mean ρ of the selection", title="score frontier")
    axes[1].set(xscale="log", xlabel="budget K", ylabel="video share", title="video share (band: preset bounds)")
    axes[2].set(xscale="log", xlabel="budget K", ylabel="temporal share within video",
                title="temporal share (dotted: floor)")
    for ax in axes:
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--presets", default="minloss,diverse,temp,temp_plus")
    parser.add_argument("--budgets", default="0.0025,0.005,0.01,0.015,0.02,0.03,0.05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--out", default=str(OUT / "frontier"))
    args = parser.parse_args(argv)
    rows = run(args.n, args.presets.split(","), [float(b) for b in args.budgets.split(",")], args.seed,
               args.time_limit)
    out = Path(args.out)
    write_csv(rows, out.with_suffix(".csv"), FIELDS)
    plot(rows, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
