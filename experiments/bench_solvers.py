"""Benchmark every solver on random GDO-shaped instances (issue 2).

    .venv/bin/python experiments/bench_solvers.py                      # 10k, 100k, 1M
    .venv/bin/python experiments/bench_solvers.py --sizes 10000 --solvers highs,cpsat,greedy,auto

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
FIELDS = ["n", "preset", "seed", "solver", "status", "build_s", "solve_s", "cpu_s", "peak_gb",
          "objective", "bound", "gap", "violations", "selected", "message"]


def child(args: argparse.Namespace) -> None:
    """Build one instance, solve it with one solver, print one JSON line (and save indices)."""
    sys.path.insert(0, str(ROOT))
    from experiments.instances import make_instance

    start = time.perf_counter()
    inst = make_instance(args.n, seed=args.seed, preset=args.preset, **json.loads(args.instance_kw))
    inst.problem.standard_form()
    build = time.perf_counter() - start
    cpu0 = time.process_time()
    extra = json.loads(args.extra)
    sel = inst.problem.solve(args.solver, time_limit=args.time_limit, seed=args.seed, **extra)
    violations = len(inst.problem.check(sel.indices)) if sel.status in ("optimal", "feasible") else -1
    if args.indices:
        np.save(args.indices, sel.indices)
    row = dict(
        n=args.n, preset=args.preset, seed=args.seed, solver=args.solver, status=sel.status,
        build_s=build, solve_s=sel.seconds, cpu_s=time.process_time() - cpu0,
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
            wall_limit: float | None = None) -> dict:
    """Run one solve in a fresh subprocess; returns its result row (status "timeout" if killed)."""
    with tempfile.TemporaryDirectory() as tmp:
        idx_path = Path(tmp) / "idx.npy"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--n", str(n), "--solver", solver,
               "--seed", str(seed), "--preset", preset, "--time-limit", str(time_limit),
               "--extra", json.dumps(extra or {}), "--instance-kw", json.dumps(instance_kw or {})]
        if keep_indices:
            cmd += ["--indices", str(idx_path)]
        limit = wall_limit or (time_limit * 1.5 + 120)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit,
                                  env={**os.environ, "PYTHONHASHSEED": "0"})
        except subprocess.TimeoutExpired:
            return dict(n=n, preset=preset, seed=seed, solver=solver, status="timeout", solve_s=limit,
                        message=f"killed after {limit:.0f} s")
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return dict(n=n, preset=preset, seed=seed, solver=solver, status="crash",
                        message=" | ".join(tail))
        row = json.loads(lines[-1][len("RESULT "):])
        if keep_indices and idx_path.exists():
            row["indices"] = np.load(idx_path)
        return row


def print_table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in ("N", "solver", "status", "build s", "solve s", "peak GB", "objective", "bound", "gap",
                 "viol.", "vs best"):
        table.add_column(name, justify="right")
    best: dict[int, float] = {}
    for r in rows:
        if r.get("status") in ("optimal", "feasible"):
            best[r["n"]] = max(best.get(r["n"], -np.inf), r["objective"])
    for r in rows:
        ok = r.get("status") in ("optimal", "feasible")
        table.add_row(
            f"{r['n']:,}", r["solver"], r.get("status", ""), _f(r.get("build_s"), 2), _f(r.get("solve_s"), 2),
            _f(r.get("peak_gb"), 2), _f(r.get("objective"), 6, "g"), _f(r.get("bound"), 6, "g"),
            _f(r.get("gap"), 2, "e"), str(r.get("violations", "")),
            f"{100 * r['objective'] / best[r['n']]:.2f}%" if ok and r["n"] in best else "",
        )
    Console(stderr=True, width=170).print(table)


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
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        solvers = args.solvers or DEFAULT_SOLVERS.get(n, "greedy,auto")
        for solver in solvers.split(","):
            backend, extra = VARIANTS.get(solver, (solver, {}))
            row = run_one(n, backend, seed=args.seed, preset=args.preset, time_limit=args.time_limit, extra=extra)
            row["solver"] = solver
            rows.append(row)
            print(f"{n:>9,} {solver:>7} {row.get('status')} {row.get('solve_s', float('nan')):.2f}s "
                  f"obj={row.get('objective')} gap={row.get('gap')}", file=sys.stderr, flush=True)
    print_table(rows, f"solvers on GDO-shaped instances (preset {args.preset}, seed {args.seed})")
    write_csv(rows, Path(args.out), FIELDS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
