"""Save the problems a `gdo-opt select` run would solve (one pickle per solve call), then stop.

Why: timing the solver alone on the real goal problems (paper goals at large K) without repeating
ingest, metrics and ρ on every try. Usage (same arguments as `gdo-opt select`, plus --dump DIR):

    python experiments/dump_problems.py --dump /tmp/h2/p1m_temp_plus_20k -- select --onevision ... --out /tmp/x
    python experiments/dump_problems.py --family hard --n 1000000 --k 20000 --dump /tmp/h2/hard1m
    python experiments/dump_problems.py --time /tmp/h2/p1m_temp_plus_20k/stage0.pkl [--solver auto]
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import sys
import time
from pathlib import Path


class _Stop(Exception):
    pass


def dump(out: Path, argv: list[str], stages: int) -> None:
    from gdo_opt import cli
    from gdo_opt.selection.problem import SelectionProblem

    out.mkdir(parents=True, exist_ok=True)
    count = [0]

    def solve(self, *args, **kwargs):
        path = out / f"stage{count[0]}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        print(f"saved {path} (n = {self.n}, K = {self.budget_hi})", file=sys.stderr)
        count[0] += 1
        if count[0] >= stages:
            raise _Stop
        return original(self, *args, **kwargs)

    original = SelectionProblem.solve
    SelectionProblem.solve = solve
    try:
        cli.main(argv)
    except _Stop:
        pass


def time_solve(path: Path, solver: str, options: dict) -> None:
    from gdo_opt.solvers.progress import StderrProgress

    with open(path, "rb") as fh:
        problem = pickle.load(fh)
    form = problem.standard_form()
    t = time.perf_counter()
    sel = problem.solve(solver, progress=StderrProgress(prefix=path.stem), **options)
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    print(json.dumps(dict(problem=str(path), n=problem.n, k=int(problem.budget_hi), rows=int(form.A.shape[0]),
                          nnz=int(form.A.nnz), solver=solver, status=str(sel.status), objective=sel.objective,
                          bound=sel.bound, gap=sel.gap, seconds=round(seconds, 2), peak_rss_gb=round(rss, 2),
                          load=load, message=sel.message[:2000])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, help="folder for stage<i>.pkl")
    parser.add_argument("--stages", type=int, default=1, help="stop after this many solve calls")
    parser.add_argument("--time", type=Path, help="a pickled problem to solve")
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--options", default="{}", help="solver options as JSON")
    parser.add_argument("--family", choices=("hard", "near"), help="save a generated instance to --dump instead")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args, rest = parser.parse_known_args()
    if args.family:
        from gdo_opt.testing.instances import make_hard_instance, make_instance

        inst = (make_hard_instance(args.n, seed=args.seed, k=args.k) if args.family == "hard"
                else make_instance(args.n, seed=args.seed, budget=args.k))
        args.dump.mkdir(parents=True, exist_ok=True)
        with open(args.dump / "stage0.pkl", "wb") as fh:
            pickle.dump(inst.problem, fh, protocol=pickle.HIGHEST_PROTOCOL)
    elif args.time:
        time_solve(args.time, args.solver, json.loads(args.options))
    else:
        dump(args.dump, [a for a in rest if a != "--"], args.stages)


if __name__ == "__main__":
    main()
