"""`gdo-opt select`: one goal's 1x subset, its Uni-kx baseline and the report."""

from __future__ import annotations

import argparse

from gdo_opt.commands._common import add_pool_arguments

HELP = "build one goal's 1x subset (+ Uni-kx baseline, report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_pool_arguments(parser)
    parser.add_argument("--preset", default=None,
                        help="the goal (required): the paper's goals minloss, diverse, temp, temp_plus (as "
                             "released), our weighted variants <goal>_weighted, or a .toml path")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def run(args: argparse.Namespace) -> int:
    from gdo_opt.commands._common import require_goal, start_metrics_prefetch
    from gdo_opt.goal.preset import load_preset

    preset = load_preset(require_goal(args.preset))  # validate the preset before reading a large pool
    prefetched = start_metrics_prefetch(args)  # before the heavy imports below: see its docstring
    try:
        from gdo_opt.commands._common import load_inputs, select_config
        from gdo_opt.subset.pipeline import exported_only, select_subset, write_outputs

        config = select_config(args)
    except BaseException:
        if prefetched is not None:
            prefetched.close()
        raise
    frame, metrics = load_inputs(args, [preset], prefetched)
    result = select_subset(frame, metrics, preset, config)
    result, frame, metrics = exported_only(result, frame, metrics)  # the rest of the pool goes before the export
    write_outputs(result, frame, metrics, args.out)
    return 0
