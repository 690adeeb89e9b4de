"""Full-scale solve: a pool the size of LLaVA-OneVision + LLaVA-Video with a certified gap (issue 8).

    .venv/bin/python experiments/full_scale.py                 # 4.5M candidates, K = 50k, 1M videos
    .venv/bin/python experiments/full_scale.py --n 1000000 --k 15000 --videos 20000 --greedy

Builds a GDO-shaped instance (experiments/instances.py: thousands of strata, per-video cap 8,
dedup, video share, temporal floor, source floors), then solves it with ``auto``: greedy seed →
core LP + pricing of every candidate with the core duals (d = c − Aᵀy, one sparse mat-vec) →
columns with d > 0 join, repeat until none → MIP on the core. Every iteration is printed as it
happens. Peak memory is this process's ru_maxrss (instance + model + solver). Writes
experiments/out/full_scale.csv (one row per event), full_scale.json (the summary) and
full_scale.png (where the time goes).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.bench_solvers import OUT, write_csv  # noqa: E402
from experiments.instances import make_instance  # noqa: E402

FIELDS = ["event", "round", "attempt", "core", "columns", "lp", "bound", "positive", "added", "status",
          "objective", "seconds", "lp_seconds", "price_seconds", "elapsed", "rss_gb"]


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4_500_000)
    parser.add_argument("--k", type=int, default=50_000)
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--preset", default="notes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--mip-gap", type=float, default=1e-4, help="relative gap that counts as solved")
    parser.add_argument("--core-top-factor", type=float, default=1.2,
                        help="initial core: the top factor × K candidates by score (+ floors, greedy)")
    parser.add_argument("--core-floor-factor", type=float, default=1.5,
                        help="initial core: the top factor × lo members of every floored group")
    parser.add_argument("--lp-method", default="choose", help="HiGHS LP method on the core: choose/simplex/ipm")
    parser.add_argument("--greedy", action="store_true", help="also run greedy (with its LP bound) for comparison")
    parser.add_argument("--out", default=str(OUT / "full_scale"))
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    events: list[dict] = []

    def report(event: dict) -> None:
        event = dict(event, elapsed=time.perf_counter() - t0, rss_gb=rss_gb())
        if event["event"] == "pricing":
            event["seconds"] = event["lp_seconds"] + event["price_seconds"]
            lp = event["lp"] if isinstance(event["lp"], str) else f"{event['lp']:.10g}"
            print(f"[{event['elapsed']:7.1f}s] pricing round {event['round']}: core {event['core']:,} "
                  f"LP {lp} bound {event.get('bound', float('nan')):.10g} positive {event.get('positive', 0):,} "
                  f"added {event['added']:,} (LP {event['lp_seconds']:.1f}s, pricing {event['price_seconds']:.2f}s)",
                  file=sys.stderr, flush=True)
        elif event["event"] == "mip":
            print(f"[{event['elapsed']:7.1f}s] core MIP {event['attempt']}: {event['columns']:,} columns, "
                  f"{event['status']}, objective {event['objective']:.10g} ({event['seconds']:.1f}s)",
                  file=sys.stderr, flush=True)
        else:
            print(f"[{event['elapsed']:7.1f}s] {event['event']}: objective {event.get('objective', 0):.10g} "
                  f"({event.get('seconds', 0):.1f}s)", file=sys.stderr, flush=True)
        events.append(event)

    inst = make_instance(args.n, seed=args.seed, preset=args.preset, budget=args.k, n_videos=args.videos)
    build_instance = time.perf_counter() - t0
    form = inst.problem.standard_form()
    build = time.perf_counter() - t0
    report(dict(event="build", seconds=build, objective=0.0))
    print(f"instance: N={args.n:,} K={args.k:,} videos={args.videos:,} rows={form.A.shape[0]:,} "
          f"nnz={form.A.nnz:,} (instance {build_instance:.1f}s, standard form {build - build_instance:.1f}s)",
          file=sys.stderr, flush=True)
    sel = inst.problem.solve("auto", time_limit=args.time_limit, mip_gap=args.mip_gap, seed=args.seed,
                             progress=report, core_top_factor=args.core_top_factor,
                             core_floor_factor=args.core_floor_factor, lp_method=args.lp_method)
    total = time.perf_counter() - t0
    violations = len(inst.problem.check(sel.indices)) if sel.status in ("optimal", "feasible") else -1
    summary = dict(
        n=args.n, k=args.k, videos=args.videos, preset=args.preset, seed=args.seed, rows=int(form.A.shape[0]),
        mip_gap=args.mip_gap, core_top_factor=args.core_top_factor, core_floor_factor=args.core_floor_factor,
        lp_method=args.lp_method,
        nnz=int(form.A.nnz), build_s=build, solve_s=sel.seconds, total_s=total, peak_gb=rss_gb(),
        status=sel.status, objective=sel.objective, bound=sel.bound, gap=sel.gap, violations=violations,
        selected=int(sel.indices.size), message=sel.message,
    )
    if args.greedy:
        start = time.perf_counter()
        g = inst.problem.solve("greedy", time_limit=args.time_limit)
        summary.update(greedy_objective=g.objective, greedy_bound=g.bound, greedy_gap=g.gap,
                       greedy_s=time.perf_counter() - start, greedy_ratio=g.objective / sel.objective,
                       greedy_status=g.status, peak_gb=rss_gb())
    print(json.dumps({k: v for k, v in summary.items() if k != "message"}, indent=1), flush=True)
    print(sel.message, file=sys.stderr)
    out = Path(args.out)
    write_csv(events, out.with_suffix(".csv"), FIELDS)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True, default=float))
    tmp.replace(out.with_suffix(".json"))
    plot(events, summary, out.with_suffix(".png"))
    return 0 if sel.status in ("optimal", "feasible") else 1


def plot(events: list[dict], summary: dict, path: Path) -> None:
    """Horizontal bars: where the seconds went (build, greedy, each LP / pricing round, each MIP)."""
    from experiments._common import pyplot, save_figure

    plt = pyplot()
    labels, seconds = [], []
    for e in events:
        if e["event"] == "pricing":
            labels += [f"LP round {e['round']} (core {e['core']:,})", f"pricing round {e['round']}"]
            seconds += [e["lp_seconds"], e["price_seconds"]]
        elif e["event"] == "mip":
            labels.append(f"MIP {e['attempt']} ({e['columns']:,} cols)")
            seconds.append(e["seconds"])
        else:
            labels.append(e["event"])
            seconds.append(e.get("seconds", 0.0))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4))
    ax.barh(range(len(labels)), seconds, color="tab:blue")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(f"N={summary['n']:,}, K={summary['k']:,}: {summary['total_s']:.0f}s total, "
                 f"peak {summary['peak_gb']:.1f} GB, gap {summary['gap']:.1e}", fontsize=10)
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
