"""Benchmark `gdo-opt select` on a synthetic ~1M-pair pool with GDO-format metrics.

    .venv/bin/python experiments/bench_select.py            # 1.05M pairs, preset temp_plus
    .venv/bin/python experiments/bench_select.py --n 50000  # quick run

Generates (vectorized) a candidate table in the CONTRACTS.md schema and a published-GDO merged
metrics JSONL (qa_uid, loss_video, loss_blind, frame_diversity, vds, quality_score), then times
the same code path as the CLI: read metrics → ρ → budget → constraints → solve → export + report.
Reports seconds per stage, peak RSS and the certified gap. The comparison with the published
builder is measured side by side, in one run, by ``experiments/vs_reference.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gdo_opt.testing.pools import make_candidates, make_gdo_metrics, write_jsonl_fast


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # Linux: KiB


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_050_000, help="candidate pairs (default 1.05M)")
    parser.add_argument("--preset", default="temp_plus")
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--target-count", type=int, default=None)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--baseline-multiplier", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument("--generate-only", default=None, metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from gdo_opt.goal.metrics import load_metrics
    from gdo_opt.goal.preset import load_preset
    from gdo_opt.subset.pipeline import SelectConfig, select_subset, write_outputs

    tmp = Path(tempfile.mkdtemp(prefix="gdo-bench-"))
    candidates_path = tmp / "candidates.parquet"
    metrics_path = tmp / "metrics.jsonl"
    if args.generate_only:
        frame = make_candidates(args.n, args.seed)
        from gdo_opt.atomic import write_parquet

        write_parquet(Path(args.generate_only) / "candidates.parquet", frame)
        write_jsonl_fast(make_gdo_metrics(frame, args.seed), Path(args.generate_only) / "metrics.jsonl")
        return 0
    # Generate in a child process so the peak RSS measured here is the select run's alone.
    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--n", str(args.n), "--seed", str(args.seed),
                    "--generate-only", str(tmp)], check=True)
    print(f"generated {args.n} pairs + GDO metrics JSONL in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    from gdo_opt.ingest.candidates import load_candidates

    t0 = time.perf_counter()
    frame = load_candidates(candidates_path)
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    metrics = load_metrics(metrics_path, frame["qa_uid"])
    t_metrics = time.perf_counter() - t1
    config = SelectConfig(solver=args.solver, seed=args.seed, target_count=args.target_count,
                          time_limit=args.time_limit, baseline_multiplier=args.baseline_multiplier, html=False)
    result = select_subset(frame, metrics, load_preset(args.preset), config)
    out = Path(args.out) if args.out else tmp / "out"
    write_outputs(result, frame, metrics, out, console=False)
    total = time.perf_counter() - t0
    peak = peak_rss_gb()
    numbers = {
        "pairs": args.n,
        "preset": args.preset,
        "k": result.report["budget"]["k"],
        "selected": result.report["selected"],
        "baseline_rows": result.report["baseline"].get("size", 0),
        "solver": result.report["solve"]["solver"],
        "status": result.report["solve"]["status"],
        "gap": result.report["solve"]["gap"],
        "seconds": {"load_candidates": round(t_load, 2), "metrics": round(t_metrics, 2), **{k: round(v, 2) for k, v in result.timing.items() if isinstance(v, float)},
                    "total_select": round(total, 2)},
        "peak_rss_gb": round(peak, 3),  # this process: load + select + export (generation excluded)
    }
    print(json.dumps(numbers, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
