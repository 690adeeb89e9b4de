"""What several subcommands share: the pool / solve arguments of `select` and `build`, loading
their inputs, and turning library errors into one line that names the command-line flag.

Importing this module stays light (argparse + the error types): `--help` must not load pandas.
"""

from __future__ import annotations

import argparse

from gdo_opt.errors import GdoError, ParameterError

# library parameter -> flag, where the flag is not simply "--" + name with "-" for "_"
FLAGS: dict[str, str] = {"inputs": "--onevision/--video/--pool"}


def flag_for(parameter: str) -> str:
    """The command-line flag of a library parameter (``mip_gap`` -> ``--mip-gap``)."""
    return FLAGS.get(parameter) or "--" + parameter.replace("_", "-")


def describe(error: GdoError) -> str:
    """A library error as the CLI prints it: a ``ParameterError`` names the flag, not the parameter."""
    if isinstance(error, ParameterError):
        return error.render(flag_for(error.parameter))
    return str(error)


def solver_names() -> tuple[str, ...]:
    """The solver registry's names (the registry module is light: no solver is imported)."""
    from gdo_opt.solvers import backend_names

    return tuple(backend_names())


def ablation_choices() -> dict[str, tuple[str, ...]]:
    """``--ablate NAME`` -> descriptors it drops, read from the preset schema's ablation switches."""
    from gdo_opt.goal.preset import ABLATIONS

    return {flag.removeprefix("drop_"): descriptors for flag, descriptors in ABLATIONS.items()}


def add_pool_arguments(parser: argparse.ArgumentParser) -> None:
    """Pool + metrics + solve options shared by `select` and `build`."""
    parser.add_argument("--candidates", metavar="PARQUET", help="candidates.parquet from `gdo-opt ingest` (or its folder)")
    parser.add_argument("--onevision", action="append", default=[], metavar="FILE",
                        help="ingest a LLaVA-OneVision JSONL on the fly (instead of --candidates); repeatable")
    parser.add_argument("--video", action="append", default=[], metavar="FILE",
                        help="ingest a LLaVA-Video JSONL on the fly (instead of --candidates); repeatable")
    parser.add_argument("--metrics", metavar="FILE",
                        help="descriptors.parquet (gdo-opt merge) or the published GDO merged-metrics JSONL")
    parser.add_argument("--target-count", type=int, default=None, metavar="N", help="override the preset's budget rule")
    from gdo_opt.solvers import DEFAULT_TIME_LIMIT

    parser.add_argument("--solver", default="auto", choices=solver_names(),
                        help="solver backend (default auto; see docs/solvers.md)")
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, metavar="S",
                        help=f"time limit per solve in seconds (default {DEFAULT_TIME_LIMIT:g}); on expiry the best "
                             "feasible subset so far is kept with its certified gap (status time_limit)")
    parser.add_argument("--mip-gap", type=float, default=1e-4, help="relative MIP gap to stop at (default 1e-4)")
    parser.add_argument("--seed", type=int, default=42, help="solver and baseline seed (default 42)")
    parser.add_argument("--baseline-multiplier", type=int, default=10, metavar="M",
                        help="Uni-Mx baseline size as a multiple of K (default 10; 0 skips it)")
    parser.add_argument("--frames-as", default="video", choices=("video", "images"),
                        help="export frame lists as one <video> (list of frames) or one <image> per frame")
    parser.add_argument("--ablate", action="append", default=[], choices=sorted(ablation_choices()),
                        help="drop a descriptor family from the score (repeatable)")
    parser.add_argument("--no-html", action="store_true", help="skip report.html")
    parser.add_argument("--parquet", action="store_true",
                        help="also write each subset as Parquet beside its JSONL (same rows and fields)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a solver status line per phase on stderr (pricing round, core size, LP bound, "
                             "incumbent, gap, elapsed); default: on when stderr is a terminal")


def load_inputs(args: argparse.Namespace):
    """The candidate table and aligned metrics, from --candidates or on-the-fly ingest."""
    from gdo_opt.goal.metrics import load_metrics, no_metrics

    if args.candidates and (args.onevision or args.video):
        raise GdoError("give either --candidates or --onevision/--video, not both")
    if args.candidates:
        from gdo_opt.ingest.candidates import load_candidates

        frame = load_candidates(args.candidates)
    elif args.onevision or args.video:
        from gdo_opt.ingest.pool import ingest

        frame = ingest(onevision=args.onevision, video=args.video, progress=False).to_pandas()
    else:
        raise GdoError("no pool: pass --candidates DIR/candidates.parquet or --onevision/--video FILE")
    metrics = load_metrics(args.metrics, frame["qa_uid"]) if args.metrics else no_metrics(len(frame))
    return frame, metrics


def _progress_wanted(args: argparse.Namespace) -> bool:
    import sys

    wanted = getattr(args, "progress", None)
    return sys.stderr.isatty() if wanted is None else bool(wanted)


def require_goal(preset: str | None) -> str:
    """No silent default goal: without --preset, say which goals there are."""
    if preset:
        return preset
    from gdo_opt.goal.preset import builtin_names

    raise GdoError(f"no goal: pass --preset NAME (one of {', '.join(builtin_names())}) or --preset my_goal.toml")


def select_config(args: argparse.Namespace):
    """The library's ``SelectConfig`` from the shared pool arguments (it validates the values)."""
    from gdo_opt.subset.pipeline import SelectConfig

    ablations = ablation_choices()
    ablate = tuple(d for name in args.ablate for d in ablations[name])
    return SelectConfig(target_count=args.target_count, solver=args.solver, time_limit=args.time_limit,
                        mip_gap=args.mip_gap, seed=args.seed, baseline_multiplier=args.baseline_multiplier,
                        frames_as=args.frames_as, ablate=ablate, html=not args.no_html,
                        progress=_progress_wanted(args), parquet=args.parquet)
