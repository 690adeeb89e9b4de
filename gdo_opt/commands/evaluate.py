"""`gdo-opt eval --config eval.toml`: lmms-eval over a model or every checkpoint-* of a run -> tidy table."""

from __future__ import annotations

import argparse

HELP = "evaluate checkpoints with lmms-eval"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="eval.toml with an [eval] table (docs/comparison.md)")
    parser.add_argument("--dry-run", action="store_true", help="print the lmms-eval command per checkpoint and exit")
    parser.add_argument("--quiet", action="store_true", help="only log to each checkpoint's lmms_eval.log")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.compare.evaluate import dry_run_lines, evaluate, load_eval_config

    console = Console(stderr=True)
    cfg = load_eval_config(args.config)
    if args.dry_run:
        print("\n".join(dry_run_lines(cfg)))
        return 0
    table = evaluate(cfg, echo=not args.quiet)
    console.print(f"[green]evaluated[/green] {table['checkpoint'].nunique()} checkpoint(s), {len(table)} rows -> "
                  f"{cfg.output_dir}/results.parquet (+ .csv)")
    return 0
