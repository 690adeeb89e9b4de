"""Benchmark every solver on both instance families (issues 2 and 15).

    .venv/bin/python experiments/bench_solvers.py                      # 10k, 100k, 1M; near + hard
    .venv/bin/python experiments/bench_solvers.py --sizes 10000 --solvers highs,cpsat,greedy,auto
    .venv/bin/python experiments/bench_solvers.py --families hard --sizes 1000000 --solvers greedy,auto

Families (experiments/instances.py): ``near`` is the near-integral GDO-shaped one (K = 1.5% N),
``hard`` the one of issue 15 (token knapsack + GPU-seconds covering rows, tight quotas, 0.15·N
capped videos, cross-video dedup, three shares; K = N/50). ``--k`` overrides K. Every row
records the 1-minute load average before and after its solve (timings on a shared 2-core
machine are only comparable side by side, in one run).

Each (N, solver) runs in its own subprocess so that its peak memory (ru_maxrss, which includes
building the instance) and its time are its own. Prints a rich table and writes
experiments/out/bench_solvers.csv. Solvers known not to finish at a size on a 2-core machine are
left out of the default lists (plain HiGHS and CP-SAT at 1M: see docs/solvers.md).
``greedy_plain`` is the greedy without its LP bound (pure speed, no certificate); ``greedy`` is
the default: LP bound + LP-guided second pass.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "out"
DEFAULT_SOLVERS = {10_000: "highs,cpsat,cvxpy,greedy_plain,greedy,auto",
                   100_000: "highs,cpsat,greedy_plain,greedy,auto", 1_000_000: "greedy_plain,greedy,auto"}
# labels for solver variants: (backend, extra options)
VARIANTS = {"greedy_plain": ("greedy", {"bound": False})}
FIELDS = ["family", "n", "k", "preset", "seed", "solver", "status", "build_s", "solve_s", "wall_s", "cpu_s",
          "peak_gb", "objective", "bound", "gap", "violations", "selected", "load_before", "load_after", "message"]


def child(args: argparse.Namespace) -> None:
    """Build one instance, solve it with one solver, print one JSON line (and save indices)."""
    sys.path.insert(0, str(ROOT))
    from experiments.instances import make_hard_instance, make_instance

    start = time.perf_counter()
    kw = json.loads(args.instance_kw)
    if args.family == "hard":
        inst = make_hard_instance(args.n, seed=args.seed, k=args.k, **kw)
    else:
        inst = make_instance(args.n, seed=args.seed, preset=args.preset, budget=args.k, **kw)
    inst.problem.standard_form()
    build = time.perf_counter() - start
    cpu0 = time.process_time()
    extra = json.loads(args.extra)
    load_before = os.getloadavg()[0]
    wall0 = time.perf_counter()
    sel = inst.problem.solve(args.solver, time_limit=args.time_limit, seed=args.seed, **extra)
    wall = time.perf_counter() - wall0
    violations = len(inst.problem.check(sel.indices)) if sel.status in ("optimal", "feasible") else -1
    if args.indices:
        np.save(args.indices, sel.indices)
    row = dict(
        family=args.family, n=args.n, k=inst.k, preset=args.preset if args.family == "near" else "-",
        seed=args.seed, solver=args.solver, status=sel.status,
        build_s=build, solve_s=sel.seconds, wall_s=wall, cpu_s=time.process_time() - cpu0,
        load_before=load_before, load_after=os.getloadavg()[0],
        peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        objective=sel.objective, bound=sel.bound, gap=sel.gap, violations=violations,
        selected=int(sel.indices.size), message=sel.message, info=_jsonable(sel.info),
    )
    print("RESULT " + json.dumps(row))


def _jsonable(info: dict) -> dict:
    out = {}
    for key, value in info.items():
        try:
            json.dumps(value)
            out[key] = value
        except TypeError:
            out[key] = str(value)
    return out


def run_one(n: int, solver: str, seed: int = 0, preset: str = "notes", time_limit: float = 600.0,
            extra: dict | None = None, instance_kw: dict | None = None, keep_indices: bool = False,
            wall_limit: float | None = None, family: str = "near", k: int | None = None) -> dict:
    """Run one solve in a fresh subprocess; returns its result row (status "timeout" if killed)."""
    with tempfile.TemporaryDirectory() as tmp:
        idx_path = Path(tmp) / "idx.npy"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--n", str(n), "--solver", solver,
               "--seed", str(seed), "--preset", preset, "--time-limit", str(time_limit),
               "--extra", json.dumps(extra or {}), "--instance-kw", json.dumps(instance_kw or {}),
               "--family", family] + ([] if k is None else ["--k", str(k)])
        if keep_indices:
            cmd += ["--indices", str(idx_path)]
        limit = wall_limit or (time_limit * 1.5 + 120)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit,
                                  env={**os.environ, "PYTHONHASHSEED": "0"})
        except subprocess.TimeoutExpired:
            return dict(family=family, n=n, preset=preset, seed=seed, solver=solver, status="timeout",
                        solve_s=limit, message=f"killed after {limit:.0f} s")
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return dict(family=family, n=n, preset=preset, seed=seed, solver=solver, status="crash",
                        message=" | ".join(tail))
        row = json.loads(lines[-1][len("RESULT "):])
        if keep_indices and idx_path.exists():
            row["indices"] = np.load(idx_path)
        return row


def print_table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in ("family", "N", "K", "solver", "status", "build s", "solve s", "peak GB", "objective", "bound",
                 "gap", "viol.", "vs best", "load"):
        table.add_column(name, justify="right")
    best: dict[tuple, float] = {}
    for r in rows:
        if r.get("status") in ("optimal", "feasible", "time_limit") and np.isfinite(r.get("objective", np.nan)):
            key = (r.get("family"), r["n"])
            best[key] = max(best.get(key, -np.inf), r["objective"])
    for r in rows:
        key = (r.get("family"), r["n"])
        ok = r.get("status") in ("optimal", "feasible", "time_limit") and np.isfinite(r.get("objective", np.nan))
        load = f"{r['load_before']:.1f}→{r['load_after']:.1f}" if "load_before" in r else ""
        table.add_row(
            str(r.get("family", "")), f"{r['n']:,}", f"{r.get('k', '')}", r["solver"], str(r.get("status", "")),
            _f(r.get("build_s"), 2), _f(r.get("solve_s"), 2), _f(r.get("peak_gb"), 2),
            _f(r.get("objective"), 6, "g"), _f(r.get("bound"), 6, "g"), _f(r.get("gap"), 2, "e"),
            str(r.get("violations", "")),
            f"{100 * r['objective'] / best[key]:.2f}%" if ok and key in best else "", load,
        )
    Console(stderr=True, width=190).print(table)


def _f(value, digits: int, kind: str = "f") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "" if value is None else str(value)
    return format(value, f".{digits}{kind}")


def write_csv(rows: list[dict], path: Path, fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--families", default="near,hard", help="comma list of near, hard")
    parser.add_argument("--k", type=int, default=None, help="budget K (default: the family's)")
    parser.add_argument("--solvers", default=None, help="comma list; default depends on N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="notes")
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--out", default=str(OUT / "bench_solvers.csv"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--solver", help=argparse.SUPPRESS)
    parser.add_argument("--extra", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--instance-kw", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--indices", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--family", default="near", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    rows = []
    for family in args.families.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            solvers = args.solvers or DEFAULT_SOLVERS.get(n, "greedy,auto")
            for solver in solvers.split(","):
                backend, extra = VARIANTS.get(solver, (solver, {}))
                row = run_one(n, backend, seed=args.seed, preset=args.preset, time_limit=args.time_limit,
                              extra=extra, family=family, k=args.k)
                row["solver"] = solver
                rows.append(row)
                print(f"{family:>4} {n:>9,} {solver:>12} {row.get('status')} {row.get('solve_s', float('nan')):.2f}s "
                      f"obj={row.get('objective')} gap={row.get('gap')} load={row.get('load_before')}",
                      file=sys.stderr, flush=True)
    print_table(rows, f"solvers on {args.families} instances (near preset {args.preset}, seed {args.seed}); "
                      f"load = 1-min load average before→after the solve")
    write_csv(rows, Path(args.out), FIELDS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
