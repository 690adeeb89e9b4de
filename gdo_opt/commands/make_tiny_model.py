"""`gdo-opt make-tiny-model DIR`: write the tiny random Qwen3-VL model used by tests and the CPU bench."""

from __future__ import annotations

import argparse

from gdo_opt import argtypes

HELP = "write a tiny random Qwen3-VL model (offline)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="output folder (created)")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="weight initialisation seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.descriptors.tiny_model import make_tiny_model

    path = make_tiny_model(args.dir, seed=args.seed)
    Console(stderr=True).print(f"tiny Qwen3-VL model written to [bold]{path}[/]")
    return 0
