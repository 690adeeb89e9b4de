"""Before / after in one run: ``bench_solvers.py`` from an older commit and from this tree, each
configuration with the old code and then the new, so both see the same load (a 2-core machine
shared with other jobs: timings are only comparable side by side). Prints a markdown table.

    .venv/bin/python experiments/side_by_side.py --before 786dc7a \\
        --config "hard 1000000 20000 greedy_plain,greedy,auto 300" \\
        --config "hard 4500000 50000 greedy,auto 10"

A configuration is "family N K solvers time_limit" (``bench_solvers.py --families --sizes --k
--solvers --time-limit``). The old tree is ``git archive``d into a temporary folder; its
``gdo_opt/solvers`` is linked to its own ``solvers/`` so that the old solvers are the ones
imported (the editable install maps ``gdo_opt.solvers`` to the installed tree's). Used for the
before/after table of issue 15 in docs/solvers.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export_tree(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    link = dest / "gdo_opt" / "solvers"
    if not link.exists():
        link.symlink_to(Path("..") / "solvers")
    return dest


def bench(tree: Path, family: str, n: str, k: str, solvers: str, limit: str, out: Path) -> list[dict]:
    cmd = [sys.executable, str(tree / "experiments" / "bench_solvers.py"), "--families", family, "--sizes", n,
           "--k", k, "--solvers", solvers, "--time-limit", limit, "--out", str(out)]
    subprocess.run(cmd, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as handle:
        return list(csv.DictReader(handle))


def cell(row: dict) -> str:
    obj = float(row.get("objective") or "nan")
    gap = float(row.get("gap") or "inf")
    value = f"{obj:,.1f}" if math.isfinite(obj) else "no subset"
    gap_s = f", gap {gap:.1e}" if math.isfinite(gap) else ""
    return f"{row['status']}, {float(row['solve_s']):.2f} s, {value}{gap_s} [{float(row['load_before']):.1f}]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision of the old code")
    parser.add_argument("--config", action="append", required=True, help='"family N K solvers time_limit"')
    args = parser.parse_args(argv)
    print("| family | N | K | solver | time limit | before [load] | after [load] | peak GB after |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        old = export_tree(args.before, Path(tmp) / "before")
        for i, config in enumerate(args.config):
            family, n, k, solvers, limit = config.split()
            before = bench(old, family, n, k, solvers, limit, Path(tmp) / f"{i}_before.csv")
            after = bench(ROOT, family, n, k, solvers, limit, Path(tmp) / f"{i}_after.csv")
            for b, a in zip(before, after):
                print(f"| {family} | {int(n):,} | {int(k):,} | {a['solver']} | {limit} s | {cell(b)} | {cell(a)} "
                      f"| {float(a['peak_gb']):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
