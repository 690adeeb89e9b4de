"""`gdo-opt select` end to end at the paper's budgets: each goal at several K on one LLaVA-shaped pool.

    nice .venv/bin/python experiments/select_scale.py --pool experiments/out/vs_reference/pool_1000000 \
        --k 10000 20000 50000

The pool is a folder written by ``experiments/llava_pool.py`` (onevision.jsonl, video.jsonl and the
published merged metrics.jsonl). Each run is the CLI as a user runs it (``--target-count K``, the
default solver, time limit and Uni-10x baseline; ``--no-html``), in its own process: wall seconds
and the peak memory of its process tree (PSS, ``experiments/_measure.py``), status and
certified gap from the run's report.json, with the load average before each run. Results:
``experiments/out/select_scale.csv`` and a table on stdout. The targets (issue 15) are ≤ 60 s and
gap ≤ 1e-4 per run at ~1M pairs, peak RSS at most the published builder's on the same pool
(``experiments/vs_reference.py`` measures that side by side).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._measure import run_measured  # noqa: E402

HERE = Path(__file__).resolve().parent
GOALS = ("minloss", "diverse", "temp", "temp_plus")
FIELDS = ["pairs", "goal", "k", "seconds", "peak_gb", "status", "gap", "selected", "hard_violations", "rc", "load"]


def run_one(pool: Path, goal: str, k: int, out: Path, extra: list[str]) -> dict:
    exe = Path(sys.executable).with_name("gdo-opt")
    cmd = [str(exe), "select", "--onevision", str(pool / "onevision.jsonl"), "--video", str(pool / "video.jsonl"),
           "--metrics", str(pool / "metrics.jsonl"), "--preset", goal, "--target-count", str(k), "--no-html",
           "--no-progress", "--out", str(out), *extra]
    run = run_measured(cmd, out.with_suffix(".log"))
    rc = run["rc"]
    report = json.loads((out / "report.json").read_text()) if rc == 0 and (out / "report.json").is_file() else {}
    solve = report.get("solve", {})
    return {"goal": goal, "k": k, "seconds": round(run["seconds"], 2), "peak_gb": round(run["gb"], 3),
            "status": solve.get("status"), "gap": solve.get("gap"), "selected": report.get("selected"),
            "hard_violations": len(report.get("violations", [])) if report else None, "rc": rc,
            "load": round(run["load_before"], 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, required=True, help="a folder written by experiments/llava_pool.py")
    parser.add_argument("--k", type=int, nargs="+", default=[10_000, 20_000, 50_000])
    parser.add_argument("--goals", nargs="+", default=list(GOALS), choices=GOALS)
    parser.add_argument("--csv", type=Path, default=HERE / "out" / "select_scale.csv")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `select` flags, last")
    args = parser.parse_args(argv)
    for name in ("onevision.jsonl", "video.jsonl", "metrics.jsonl"):
        if not (args.pool / name).is_file():
            parser.error(f"--pool {args.pool}: no {name} there (write one with experiments/llava_pool.py)")
    pairs = json.loads((args.pool / "pool.json").read_text()).get("pairs") if (args.pool / "pool.json").is_file() else None
    work = HERE / "out" / "select_scale"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in args.k:
        for goal in args.goals:
            row = {"pairs": pairs, **run_one(args.pool, goal, k, work / f"{goal}_{k}", args.extra)}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            with open(args.csv, "w", newline="") as handle:  # rewritten after each run: partial runs keep rows
                writer = csv.DictWriter(handle, fieldnames=FIELDS)
                writer.writeheader()
                writer.writerows(rows)
    print("| " + " | ".join(FIELDS) + " |")
    print("|" + "---|" * len(FIELDS))
    for row in rows:
        print("| " + " | ".join("–" if row[f] is None else str(row[f]) for f in FIELDS) + " |")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
