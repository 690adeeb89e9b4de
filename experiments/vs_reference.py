"""Side by side with the published GDO builder on the same generated pool, measured in one run.

    nice .venv/bin/python experiments/vs_reference.py --reference /tmp/gdo-ref --pairs 200000 1000000

For each pool size (``--pairs``) this generates a LLaVA-shaped pool in the published input format
(``experiments/llava_pool.py``; ``--reuse`` keeps an existing one), then for each of the four goals:

1. runs the published builder through its own script, ``scripts/build_profile.sh configs/<goal>.env``
   (two-pass ``build_pair.py`` + frame resampling), with ``PYTHON_BIN`` = this interpreter;
2. runs ``gdo-opt select --preset <goal>`` on the same raw JSONL files and merged metrics;
3. audits both subsets with ``gdo-opt audit``'s library call on the same pool and ρ: K, Σρ, every
   violation of the goal's constraints, and the published subset's gap to our certified optimum.

Seconds are wall clock; memory is the peak proportional set size of the whole process tree
(``experiments/_measure.py``: the workers ``select`` forks count, pages they share with it count
once), sampled the same way on both sides; each side's largest single process (``ru_maxrss``) is
in the CSV too. The load average is recorded beside every timing. ``--repeat N`` runs both sides N
times, alternating, and reports each side's median (every run's seconds in the CSV): on a shared
2-core machine a slow spell moves a single 5 s run by 20-40%. Results: ``experiments/out/vs_reference.csv`` and a table
on stdout with ratios (speed-up = published s / ours s; memory = published GB / ours GB). Σρ is the
plain sum of ρ; "obj." is the goal's objective as audited, which for goals with soft quotas is Σρ
minus the quota-shortfall penalty; "optimum" is the certified optimum of that objective at the same K.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments._measure import run_measured  # noqa: E402

HERE = Path(__file__).resolve().parent
GOALS = ("minloss", "diverse", "temp", "temp_plus")
OUT = HERE / "out" / "vs_reference"
FIELDS = ["pairs", "goal", "ref_s", "ours_s", "speedup", "ref_gb", "ours_gb", "mem_ratio", "ref_max_rss_gb", "ours_max_rss_gb", "ref_k", "ours_k",
          "k_ratio", "ref_objective", "ours_objective", "sigma_gain", "ref_violations", "ref_violated",
          "ref_penalized", "optimum_same_k", "ref_gap", "ours_violations", "ours_gap", "load_before", "load_after",
          "runs", "ref_runs_s", "ours_runs_s"]


def run_reference(reference: Path, goal: str, pool: Path, out: Path) -> dict:
    env = dict(os.environ, ONEVISION_PATH=str(pool / "onevision.jsonl"), VIDEO_PATH=str(pool / "video.jsonl"),
               METRICS_JSONL=str(pool / "metrics.jsonl"), OUTPUT_ROOT=str(out), PYTHON_BIN=sys.executable)
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["bash", str(reference / "scripts" / "build_profile.sh"), str(reference / "configs" / f"{goal}.env")]
    result = run_measured(cmd, out / f"{goal}.log", env)
    result["subset"] = out / goal / "gdo_1x_32f.jsonl"
    return result


def run_ours(goal: str, pool: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("gdo-opt")
    cmd = [str(exe), "select", "--onevision", str(pool / "onevision.jsonl"), "--video", str(pool / "video.jsonl"),
           "--metrics", str(pool / "metrics.jsonl"), "--preset", goal, "--no-html", "--out", str(out / goal)]
    result = run_measured(cmd, out / f"{goal}.log")
    result["subset"] = out / goal / "gdo_1x.jsonl"
    return result


def median_run(runs: list[dict]) -> dict:
    """One side's repeated runs as one: median seconds and peak memory (the same statistic on both
    sides), every run's seconds kept; failed if any run failed."""
    import statistics

    out = dict(runs[-1])
    failed = [r["rc"] for r in runs if r["rc"] != 0]
    out["rc"] = failed[0] if failed else 0
    for key in ("seconds", "gb", "max_rss_gb"):
        out[key] = statistics.median(r[key] for r in runs)
    out["load_before"] = min(r["load_before"] for r in runs)
    out["load_after"] = max(r["load_after"] for r in runs)
    out["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    return out


def ensure_pool(pairs: int, seed: int, reuse: bool) -> Path:
    pool = OUT / f"pool_{pairs}"
    meta = pool / "pool.json"
    if reuse and meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("pairs") == pairs and info.get("seed") == seed:
            print(f"reusing {pool}", file=sys.stderr)
            return pool
    t = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / "llava_pool.py"), "--pairs", str(pairs), "--seed", str(seed),
                    "--out", str(pool)], check=True)
    print(f"generated {pairs} pairs in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return pool


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b not in (None, 0) else None


def audit_both(pool: Path, runs: dict) -> dict:
    """Audit each goal's two subsets on one loaded pool (same ρ, same constraints as select)."""
    from gdo_opt.goal.metrics import load_metrics
    from gdo_opt.goal.preset import load_preset
    from gdo_opt.ingest.pool import ingest
    from gdo_opt.subset.audit import audit_file
    from gdo_opt.subset.pipeline import SelectConfig

    frame = ingest(onevision=[str(pool / "onevision.jsonl")], video=[str(pool / "video.jsonl")],
                   progress=False).to_pandas()
    metrics = load_metrics(pool / "metrics.jsonl", frame["qa_uid"])
    audits = {}
    for goal, (ref, ours) in runs.items():
        preset = load_preset(goal)
        audits[goal] = {}
        for side, run, solve in (("ref", ref, True), ("ours", ours, False)):
            if run["rc"] != 0 or not run["subset"].is_file():
                audits[goal][side] = None
                continue
            audits[goal][side] = audit_file(run["subset"], frame, metrics, preset, SelectConfig(), solve=solve)
    return audits


def _sigma(audit: dict) -> float:
    """Σρ of the subset under the goal's ρ (paper goals also report a quota-penalised objective)."""
    return audit.get("sigma_rho", audit["objective"])


def rows_for(pairs: int, runs: dict, audits: dict) -> list[dict]:
    rows = []
    for goal, (ref, ours) in runs.items():
        a_ref, a_ours = audits[goal]["ref"], audits[goal]["ours"]
        ours_report = ours["subset"].with_name("report.json")
        ours_gap = json.loads(ours_report.read_text()).get("solve", {}).get("gap") if ours_report.is_file() else None
        rows.append({
            "pairs": pairs, "goal": goal,
            "ref_s": round(ref["seconds"], 2) if ref["rc"] == 0 else f"failed rc={ref['rc']}",
            "ours_s": round(ours["seconds"], 2) if ours["rc"] == 0 else f"failed rc={ours['rc']}",
            "speedup": _ratio(ref["seconds"], ours["seconds"]) if ref["rc"] == ours["rc"] == 0 else None,
            "ref_gb": round(ref["gb"], 3), "ours_gb": round(ours["gb"], 3), "mem_ratio": _ratio(ref["gb"], ours["gb"]),
            "ref_max_rss_gb": round(ref["max_rss_gb"], 3), "ours_max_rss_gb": round(ours["max_rss_gb"], 3),
            "ref_k": a_ref and a_ref["k"], "ours_k": a_ours and a_ours["k"],
            "k_ratio": a_ref and a_ours and _ratio(a_ours["k"], a_ref["k"]),
            "ref_objective": a_ref and _sigma(a_ref), "ours_objective": a_ours and _sigma(a_ours),
            "sigma_gain": a_ref and a_ours and round(_sigma(a_ours) - _sigma(a_ref), 6),
            "ref_violations": a_ref and len(a_ref["violations"]),
            "ref_violated": a_ref and " ".join(sorted({v["name"] for v in a_ref["violations"]})),
            "ref_penalized": a_ref and a_ref["objective"], "optimum_same_k": a_ref and a_ref["optimum"],
            "ref_gap": a_ref and a_ref["gap"],
            "ours_violations": a_ours and len(a_ours["violations"]), "ours_gap": ours_gap,
            "load_before": round(min(ref["load_before"], ours["load_before"]), 2),
            "load_after": round(max(ref["load_after"], ours["load_after"]), 2),
            "runs": len(ref.get("all_seconds", [0])),
            "ref_runs_s": " ".join(map(str, ref.get("all_seconds", []))),
            "ours_runs_s": " ".join(map(str, ours.get("all_seconds", []))),
        })
    return rows


def print_table(rows: list[dict]) -> None:
    head = ["pairs", "goal", "ref s", "ours s", "speed-up", "ref GB", "ours GB", "mem", "K ref", "K ours",
            "Σρ ref", "Σρ ours", "Σρ ours − ref", "ref viol.", "ref obj.", "optimum", "ref gap", "load"]
    keys = ["pairs", "goal", "ref_s", "ours_s", "speedup", "ref_gb", "ours_gb", "mem_ratio", "ref_k", "ours_k",
            "ref_objective", "ours_objective", "sigma_gain", "ref_violations", "ref_penalized", "optimum_same_k",
            "ref_gap", "load_before"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join("–" if row[k] is None else str(row[k]) for k in keys) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, type=Path, help="a checkout of the published repo (rujiewu/GDO)")
    parser.add_argument("--pairs", type=int, nargs="+", default=[200_000], help="pool sizes (default 200000)")
    parser.add_argument("--goals", nargs="+", default=list(GOALS), choices=GOALS)
    parser.add_argument("--seed", type=int, default=0, help="pool generator seed")
    parser.add_argument("--reuse", action="store_true", help="keep an existing generated pool of the same size/seed")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run both sides N times, alternating, and report each side's median seconds and "
                             "peak memory (a shared machine's slow spells move single runs by 20-40%%)")
    parser.add_argument("--csv", type=Path, default=HERE / "out" / "vs_reference.csv")
    args = parser.parse_args(argv)
    script = args.reference / "scripts" / "build_profile.sh"
    if not script.is_file() or not (args.reference / "gdo" / "build_pair.py").is_file():
        parser.error(f"--reference {args.reference}: no scripts/build_profile.sh + gdo/build_pair.py there")
    rows = []
    for pairs in args.pairs:
        pool = ensure_pool(pairs, args.seed, args.reuse)
        runs = {}
        for goal in args.goals:
            refs, ourss = [], []
            for _ in range(args.repeat):  # alternated, so a slow spell of the machine hits both sides
                refs.append(run_reference(args.reference, goal, pool, OUT / f"ref_{pairs}"))
                ourss.append(run_ours(goal, pool, OUT / f"ours_{pairs}"))
            ref, ours = median_run(refs), median_run(ourss)
            print(f"{pairs} {goal}: published {ref['seconds']:.1f} s {ref['gb']:.2f} GB rc={ref['rc']}; "
                  f"ours {ours['seconds']:.1f} s {ours['gb']:.2f} GB rc={ours['rc']} "
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
            runs[goal] = (ref, ours)
        rows += rows_for(pairs, runs, audit_both(pool, runs))
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as handle:  # rewritten after each size: partial runs keep rows
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    print_table(rows)
    print(f"wrote {args.csv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
