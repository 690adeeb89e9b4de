"""`gdo-opt` command line: a thin layer that parses arguments and calls the library.

Each subcommand lives in ``gdo_opt/commands/<name>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``gdo-opt ingest`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gdo_opt.errors import GdoError

# command name -> (module, one-line help). Order is the order of `gdo-opt --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("gdo_opt.commands.demo", "run the whole chain on the built-in demo pool"),
    "ingest": ("gdo_opt.commands.ingest", "pool JSONL/Parquet -> candidates.parquet + profile"),
    "make-demo-pool": ("gdo_opt.commands.make_demo_pool", "write the synthetic demo pool (JSONL + media)"),
    "make-tiny-model": ("gdo_opt.commands.make_tiny_model", "write a tiny random Qwen3-VL model (offline)"),
    "extract": ("gdo_opt.commands.extract", "compute descriptors into resumable Parquet shards"),
    "merge": ("gdo_opt.commands.merge", "merge descriptor shards into one normalized table"),
    "select": ("gdo_opt.commands.select", "build one goal's 1x subset (+ Uni-kx baseline, report)"),
    "build": ("gdo_opt.commands.build", "build the subsets of all four goal presets"),
    "audit": ("gdo_opt.commands.audit", "evaluate a subset file against a goal: Σρ, violations, optimum, gap"),
    "train": ("gdo_opt.commands.train", "one-epoch SFT with ms-swift"),
    "eval": ("gdo_opt.commands.evaluate", "evaluate checkpoints with lmms-eval"),
    "compare": ("gdo_opt.commands.compare", "final deltas, peak match and reduction of two runs"),
    "pipeline": ("gdo_opt.commands.pipeline", "one goal end to end: build, train GDO-1x and Uni-10x, evaluate, compare"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdo-opt",
        description="Exact, certified subset selection for multimodal instruction tuning.",
    )
    from gdo_opt import __version__

    parser.add_argument("--version", action="version", version=f"gdo-opt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module_name)
        # Arguments are added lazily (see main) so --help of one command imports only that module.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help / version / unknown-command error
        parser.print_help()
        return 2
    module_name, help_text = COMMANDS[argv[0]]
    module = importlib.import_module(module_name)
    command_parser = argparse.ArgumentParser(prog=f"gdo-opt {argv[0]}", description=help_text)
    module.add_arguments(command_parser)
    args = command_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except GdoError as error:
        from gdo_opt.commands._common import describe

        print(f"gdo-opt {argv[0]}: error: {describe(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gdo-opt {argv[0]}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
