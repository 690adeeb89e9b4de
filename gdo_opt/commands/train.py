"""`gdo-opt train --config train.toml`: one-epoch SFT with ms-swift (`--dry-run` prints the command)."""

from __future__ import annotations

import argparse

HELP = "one-epoch SFT with ms-swift"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="train.toml with a [train] table (docs/comparison.md)")
    parser.add_argument("--dry-run", action="store_true", help="print the exact shell command and exit")
    parser.add_argument("--resume", action="store_true", help="resume from the latest checkpoint-* (as resume = true)")
    parser.add_argument("--quiet", action="store_true", help="only log to OUTPUT_DIR/train.log, do not echo")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.compare.train import load_train_config, plan_training, train

    console = Console(stderr=True)
    cfg = load_train_config(args.config)
    if args.resume:
        cfg.resume = True
    if args.dry_run:
        plan = plan_training(cfg)
        print(plan.shell())
        return 0
    plan = train(cfg, echo=not args.quiet)
    console.print(f"[green]trained[/green] {plan.output_dir} (save_steps={plan.save_steps}, "
                  f"{plan.samples_per_step} samples/step); log: {plan.output_dir / 'train.log'}")
    return 0
