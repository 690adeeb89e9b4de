"""The instance generators live in ``gdo_opt.testing.instances`` (tests and benchmarks share them).

    .venv/bin/python experiments/instances.py --family hard --n 1000000     # build one, print its shape

``--family near`` is the near-integral GDO-shaped family (``make_instance``), ``hard`` the hard
one of issue 15 (``make_hard_instance``: knapsack + covering rows, tight quotas, many videos,
overlapping dedup, three shares; K = N/50).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gdo_opt.testing.instances import *  # noqa: E402, F403
from gdo_opt.testing.instances import (  # noqa: E402, F401
    PRESETS,
    HardInstance,
    Instance,
    hard_description,
    hard_small_instance,
    make_hard_instance,
    make_instance,
    random_small_instance,
    random_small_problem,
)

FAMILIES = ("near", "hard")


def build(family: str, n: int, seed: int = 0, k: int | None = None, preset: str = "notes"):
    """One instance of a family (``k`` None: the family's default budget)."""
    if family == "hard":
        return make_hard_instance(n, seed=seed, k=k)
    if family == "near":
        return make_instance(n, seed=seed, preset=preset, budget=k)
    raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=FAMILIES, default="hard")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="notes", choices=list(PRESETS))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    inst = build(args.family, args.n, args.seed, args.k, args.preset)
    built = time.perf_counter() - start
    inst.problem.standard_form()
    print(f"{args.family} N={args.n} K={inst.k} seed={args.seed}: built in {built:.2f}s, "
          f"standard form in {time.perf_counter() - start - built:.2f}s")
    print(inst.problem.summary())


if __name__ == "__main__":
    main()
