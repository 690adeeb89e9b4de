"""`gdo-opt audit`: evaluate any subset file against a goal (Σρ, constraints, optimum, gap)."""

from __future__ import annotations

import argparse

HELP = "evaluate a subset file against a goal: Σρ, violations, certified optimum and gap"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gdo_opt.commands._common import add_pool_arguments

    parser.add_argument("--subset", required=True, metavar="FILE",
                        help="subset to audit: JSONL rows with qa_uid (ours or the published gdo_1x_*.jsonl), "
                             "Parquet with a qa_uid column, a JSON list or a text file of qa_uids")
    add_pool_arguments(parser)
    parser.add_argument("--preset", default=None,
                        help="the goal (required): packaged preset name (minloss, diverse, temp, temp_plus) "
                             "or a .toml path")
    parser.add_argument("--no-solve", action="store_true",
                        help="only evaluate the subset; skip the certified optimum (bound, gap are null)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    parser.add_argument("--out", metavar="FILE", default=None, help="also write the JSON report here")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from gdo_opt.atomic import write_json
    from gdo_opt.commands._common import load_inputs, require_goal, select_config
    from gdo_opt.goal.preset import load_preset
    from gdo_opt.subset.audit import audit_file, print_audit, read_subset

    preset = load_preset(require_goal(args.preset))
    config = select_config(args)
    read = read_subset(args.subset)  # a bad subset file fails before a large pool is read
    frame, metrics = load_inputs(args, [preset])
    report = audit_file(args.subset, frame, metrics, preset, config, solve=not args.no_solve, read=read)
    if args.out:
        write_json(args.out, report)
    if args.json:
        sys.stdout.write(json.dumps(report, sort_keys=True) + "\n")
    else:
        print_audit(report)
    return 0
