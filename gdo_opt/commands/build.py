"""`gdo-opt build`: the subsets of all four goal presets from one loaded pool."""

from __future__ import annotations

import argparse

from gdo_opt.commands._common import add_pool_arguments

HELP = "build the subsets of all four goal presets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_pool_arguments(parser)
    parser.add_argument("--presets", nargs="+", default=None, metavar="PRESET",
                        help="presets to build (default: minloss diverse temp temp_plus)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder: DIR/<preset>/...")


def run(args: argparse.Namespace) -> int:
    from gdo_opt.commands._common import load_inputs, select_config
    from gdo_opt.goal.preset import BUILTIN, load_preset
    from gdo_opt.subset.pipeline import build_all

    presets = [load_preset(p) for p in (args.presets or BUILTIN)]
    config = select_config(args)
    frame, metrics = load_inputs(args, presets)
    build_all(frame, metrics, presets, config, args.out)
    return 0
