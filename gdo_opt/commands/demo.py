"""`gdo-opt demo`: the whole chain on the built-in demo pool, no arguments needed.

The pipeline is the library call ``gdo_opt.subset.demo.run_demo`` (its docstring says why the demo
uses the settings it does); this module only parses the flags.
"""

from __future__ import annotations

import argparse

from gdo_opt import argtypes
from gdo_opt.commands._common import solver_names

HELP = "run the whole chain on the built-in demo pool"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="gdo-demo", metavar="DIR", help="output folder (default ./gdo-demo)")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="demo pool and solver seed (default 0)")
    parser.add_argument("--metrics-mode", default="auto", choices=("auto", "descriptors", "proxy"),
                        help="auto (default): descriptors when torch + transformers are installed, else proxy; "
                             "descriptors: the descriptor stage with the tiny offline model; "
                             "proxy: model-free GDO-format metrics (no model)")
    parser.add_argument("--n-images", type=int, default=900, help="demo pool image rows (default 900)")
    parser.add_argument("--n-videos", type=int, default=160, help="demo pool videos (default 160)")
    parser.add_argument("--solver", default="auto", choices=solver_names(),
                        help="solver backend (default auto; see docs/solvers.md)")


def run(args: argparse.Namespace) -> int:
    from gdo_opt.subset.demo import run_demo

    run_demo(args.out, seed=args.seed, metrics_mode=args.metrics_mode, n_images=args.n_images,
             n_videos=args.n_videos, solver=args.solver)
    return 0
