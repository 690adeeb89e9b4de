"""`gdo-opt` command line: a thin layer that parses arguments and calls the library.

Each subcommand lives in ``gdo_opt/commands/<name>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``gdo-opt ingest`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from gdo_opt.errors import GdoError

# Safety net (docs/reliability.md): every error is one line on stderr. Exit 2 for what the user can
# fix (GdoError, bad arguments, a path the OS refuses), 130 for Ctrl-C, 70 for an unexpected
# exception ("internal error"); --debug (anywhere on the line) or GDO_DEBUG=1 shows the traceback.
EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPTED = 2, 70, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an argument error is one line (with a pointer to --help), exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USER, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename is not None else error.strerror
    return " ".join(str(error).split()) or type(error).__name__

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
    parser = OneLineParser(prog=f"gdo-opt {name}", description=help_text, formatter_class=HelpFormatter,
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
    parser = OneLineParser(
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
    from gdo_opt.memory import prefer_returning_allocator

    prefer_returning_allocator()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("GDO_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help / version / unknown-command error
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    try:
        args = command_parser(argv[0], module).parse_args(argv[1:])
    except SystemExit as done:  # --help (0) or an argument error (2, already printed on one line)
        return int(done.code or 0)
    prefix = f"gdo-opt {argv[0]}"
    from gdo_opt.quiet import quiet_libraries

    quiet_libraries(verbose=args.verbose)
    try:
        return int(module.run(args) or 0)
    except GdoError as error:
        from gdo_opt.commands._common import describe

        print(f"{prefix}: error: {' '.join(describe(error).split())}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # the OS refused a path (read-only, a file where a folder should be, ...)
        if debug:
            raise
        print(f"{prefix}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER
    except Exception as error:  # noqa: BLE001 - the safety net: never a traceback unless asked for
        if debug:
            raise
        print(f"{prefix}: internal error: {type(error).__name__}: {_one_line(error)} "
              "(a bug: rerun with --debug or GDO_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
