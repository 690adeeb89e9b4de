"""The pricing loop's choices side by side on one problem: first-LP method and columns per round.

    python experiments/bench_pricing.py /tmp/h2/hard1m/stage0.pkl --methods simplex ipm ipm-nocrossover \\
        --caps 0 20000

(a pickled SelectionProblem: ``experiments/dump_problems.py`` writes them). Prints one JSON line per
run: rounds, final core, seconds, bound, and the load average, so that docs/solvers.md's table can
be regenerated. Compare runs of one invocation only (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem")
    parser.add_argument("--methods", nargs="+", default=["simplex", "ipm", "ipm-nocrossover"])
    parser.add_argument("--caps", nargs="+", type=int, default=[0], help="add_cap per round (0: default)")
    args = parser.parse_args()
    from gdo_opt.solvers import pricing

    with open(args.problem, "rb") as fh:
        problem = pickle.load(fh)
    pricer = pricing.Pricer(problem)
    core = pricing.initial_core(problem, form=pricer.form)
    for method in args.methods:
        for cap in args.caps:
            start = time.perf_counter()
            result = pricing.price(problem, core, pricer=pricer, method=method, add_cap=cap or None)
            seconds = time.perf_counter() - start
            with open("/proc/loadavg") as fh:
                load = fh.read().split()[0]
            first = result.iterations[0]
            print(json.dumps(dict(problem=args.problem, method=method, add_cap=cap, status=result.status,
                                  rounds=len(result.iterations), initial_core=int(core.size),
                                  final_core=int(result.core.size), first_lp_s=round(first["lp_seconds"], 2),
                                  seconds=round(seconds, 2), bound=result.bound, load=load)), flush=True)


if __name__ == "__main__":
    main()
