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


# One runnable example per command (a module may define EXAMPLE instead); shown under its --help.
EXAMPLES: dict[str, str] = {
    "demo": "gdo-opt demo --out gdo-demo",
    "ingest": "gdo-opt ingest --onevision gdo-demo/pool/onevision.jsonl --video gdo-demo/pool/video.jsonl \\\n"
              "    --exclude gdo-demo/pool/bench.jsonl --out work/run",
    "make-demo-pool": "gdo-opt make-demo-pool work/pool",
    "make-tiny-model": "gdo-opt make-tiny-model work/tiny-model",
    "extract": "gdo-opt extract --candidates work/run/candidates.parquet --model work/tiny-model \\\n"
               "    --out work/run/shards",
    "merge": "gdo-opt merge work/run/shards --out work/run/descriptors.parquet",
    "select": "gdo-opt select --candidates work/run/candidates.parquet \\\n"
              "    --metrics work/run/descriptors.parquet --preset temp_plus --out work/subsets/temp_plus",
    "build": "gdo-opt build --candidates work/run/candidates.parquet \\\n"
             "    --metrics work/run/descriptors.parquet --out work/subsets",
    "audit": "gdo-opt audit --subset work/subsets/temp_plus/gdo_1x.jsonl \\\n"
             "    --candidates work/run/candidates.parquet --metrics work/run/descriptors.parquet --preset temp_plus",
    "train": "gdo-opt train --config experiments/configs/train.toml --dry-run",
    "eval": "gdo-opt eval --config experiments/configs/eval.toml --dry-run",
    "compare": "gdo-opt compare outputs/eval/temp_plus-gdo-1x outputs/eval/temp_plus-uni-10x --out outputs/compare",
    "pipeline": "gdo-opt pipeline --goal temp_plus --candidates work/run/candidates.parquet \\\n"
                "    --metrics work/run/descriptors.parquet --out outputs --dry-run",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the example's line breaks and appends each option's default where its help lacks it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default is argparse.SUPPRESS
                or default == [] or not action.option_strings or isinstance(action, argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


def command_parser(name: str, module) -> argparse.ArgumentParser:
    """The parser of one subcommand: its arguments, --verbose, defaults and an example in --help."""
    help_text = COMMANDS[name][1]
    example = getattr(module, "EXAMPLE", None) or EXAMPLES.get(name)
    parser = argparse.ArgumentParser(prog=f"gdo-opt {name}", description=help_text, formatter_class=HelpFormatter,
                                     epilog=f"example:\n  {example}" if example else None)
    module.add_arguments(parser)
    parser.add_argument("--verbose", action="store_true",
                        help="show other libraries' warnings and progress bars (quiet by default)")
    for action in parser._actions:  # options without a help line still show their default
        if action.help is None and action.option_strings and action.default is not None \
                and action.default is not False and action.default != []:
            action.help = "(default: %(default)s)"
    return parser


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
    module = importlib.import_module(COMMANDS[argv[0]][0])
    args = command_parser(argv[0], module).parse_args(argv[1:])
    from gdo_opt.quiet import quiet_libraries

    quiet_libraries(verbose=args.verbose)
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
