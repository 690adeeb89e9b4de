"""What several subcommands share: the pool / solve arguments of `select` and `build`, loading
their inputs, and turning library errors into one line that names the command-line flag.

Importing this module stays light (argparse + the error types): `--help` must not load pandas.
"""

from __future__ import annotations

import argparse

from gdo_opt import argtypes
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
    parser.add_argument("--target-count", type=argtypes.positive_int, default=None, metavar="N", help="override the preset's budget rule")
    from gdo_opt.solvers import DEFAULT_TIME_LIMIT

    parser.add_argument("--solver", default="auto", choices=solver_names(),
                        help="solver backend (default auto; see docs/solvers.md)")
    parser.add_argument("--time-limit", type=argtypes.positive_float, default=DEFAULT_TIME_LIMIT, metavar="S",
                        help=f"time limit per solve in seconds (default {DEFAULT_TIME_LIMIT:g}); on expiry the best "
                             "feasible subset so far is kept with its certified gap (status time_limit)")
    parser.add_argument("--mip-gap", type=argtypes.nonneg_float, default=1e-4, help="relative MIP gap to stop at (default 1e-4)")
    parser.add_argument("--seed", type=argtypes.seed, default=42, help="solver and baseline seed (default 42)")
    parser.add_argument("--baseline-multiplier", type=argtypes.nonneg_float, default=10, metavar="M",
                        help="Uni-Mx baseline size as a multiple of K (default 10; 0 skips it)")
    parser.add_argument("--export-format", "--frames-as", dest="frames_as", default="images",
                        choices=("images", "video"),
                        help="frame lists as <image> x n with the frames in `images` (the published builder's "
                             "format, default) or as one <video> whose entry is the frame list")
    paper = parser.add_argument_group("paper goals (presets with a [published] table)")
    paper.add_argument("--target-ratio", type=float, default=None, metavar="R",
                       help="K = int(R x pool size) instead of the budget rule, as the builder's --target-ratio")
    paper.add_argument("--target-frames", type=int, default=None, metavar="N",
                       help="frames per video after resampling, for the duration strata (default: preset, 32)")
    paper.add_argument("--on-infeasible", default="relax", choices=("relax", "fail"),
                       help="relax (default): when the hard rows cannot all hold, minimize their shortfall first, "
                            "then maximize the objective, write the subset and list every unmet row; fail: error")
    paper.add_argument("--quota-mode", default=None, choices=("penalty", "lexicographic", "hard"),
                       help="soft stratum quotas: penalty (Σρ − P·shortfall, the presets' default), lexicographic "
                            "(fewest missing quota rows first, then Σρ) or hard")
    paper.add_argument("--quota-penalty", type=float, default=None, metavar="P",
                       help="ρ units charged per missing quota row in penalty mode (default: preset, 1.0)")
    paper.add_argument("--no-oversample-caps", dest="oversample_caps", action="store_const", const=False,
                       default=None, help="let every pool row compete, not only each stratum's top cap_s rows")
    for name, what in (("vds", "the legacy VDS/VDS3 term"), ("ppl", "the QA naturalness / PPL-like term"),
                       ("sc", "the legacy quality / self-consistency term")):
        paper.add_argument(f"--disable-score-{name}", action="store_true", help=f"ablation: drop {what} from ρ")
    paper.add_argument("--disable-vds3-budget", action="store_true",
                       help="ablation: no VDS3-aware growth of the automatic budget")
    parser.add_argument("--ablate", action="append", default=[], choices=sorted(ablation_choices()),
                        help="drop a descriptor family from the score (repeatable)")
    parser.add_argument("--no-html", action="store_true", help="skip report.html")
    parser.add_argument("--parquet", action="store_true",
                        help="also write each subset as Parquet beside its JSONL (same rows and fields)")
    parser.add_argument("--non-finite", default="missing", choices=("missing", "reject"),
                        help="±inf in a descriptor column: treat as missing (default, said on the console) "
                             "or reject the metrics file")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a solver status line per phase on stderr (pricing round, core size, LP bound, "
                             "incumbent, gap, elapsed); default: on when stderr is a terminal")


def start_metrics_prefetch(args: argparse.Namespace):
    """The metrics file parsed in a worker from now on, when the pool is ingested on the fly (None
    otherwise). ``select`` calls this before it imports pandas and the goal machinery (~0.4 s on
    one core): the worker, forked from a still-small process, parses on the core that leaves idle."""
    if not args.metrics or args.candidates or not (args.onevision or args.video):
        return None
    from gdo_opt.goal.metrics_read import MetricsPrefetch

    return MetricsPrefetch(args.metrics)


def load_inputs(args: argparse.Namespace, presets: list | None = None, prefetched=None):
    """The candidate table and aligned metrics, from --candidates or on-the-fly ingest (lean: no text
    or media in memory; only the columns the paper goals read when every one of ``presets`` is a
    paper goal). ``prefetched``: ``start_metrics_prefetch``'s worker, when the caller started it."""
    try:
        return _load_inputs(args, presets, prefetched)
    except BaseException:
        if prefetched is not None:
            prefetched.close()
        raise


def _load_inputs(args: argparse.Namespace, presets: list | None, prefetched):
    from gdo_opt.goal.metrics import load_metrics, no_metrics
    from gdo_opt.memory import return_freed_memory, trim_heap

    return_freed_memory()

    if args.candidates and (args.onevision or args.video):
        raise GdoError("give either --candidates or --onevision/--video, not both")
    if args.candidates:
        from gdo_opt.ingest.candidates import load_candidates

        frame = load_candidates(args.candidates)
    elif args.onevision or args.video:
        from gdo_opt.ingest.pool import ingest

        if prefetched is None:
            prefetched = start_metrics_prefetch(args)  # parsed while we ingest
        lean = "paper" if presets and all(p.is_paper for p in presets) else True
        frame = ingest(onevision=args.onevision, video=args.video, progress=False, lean=lean
                       ).to_pandas(arrow_backed=True)
    else:
        raise GdoError("no pool: pass --candidates DIR/candidates.parquet or --onevision/--video FILE")
    non_finite = getattr(args, "non_finite", "missing")
    metrics = (load_metrics(args.metrics, frame["qa_uid"], non_finite, prefetched) if args.metrics
               else no_metrics(len(frame)))
    trim_heap()  # the parse and ingest temporaries' holes go back before the goal is built
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
    multiplier = args.baseline_multiplier
    multiplier = int(multiplier) if float(multiplier).is_integer() else float(multiplier)
    return SelectConfig(target_count=args.target_count, solver=args.solver, time_limit=args.time_limit,
                        mip_gap=args.mip_gap, seed=args.seed, baseline_multiplier=multiplier,
                        frames_as=args.frames_as, ablate=ablate, html=not args.no_html,
                        progress=_progress_wanted(args), parquet=args.parquet,
                        on_infeasible=args.on_infeasible, quota_mode=args.quota_mode,
                        quota_penalty=args.quota_penalty, oversample_caps=args.oversample_caps,
                        target_ratio=args.target_ratio, target_frames=args.target_frames,
                        disable_score_vds=args.disable_score_vds, disable_score_ppl=args.disable_score_ppl,
                        disable_score_sc=args.disable_score_sc, disable_vds3_budget=args.disable_vds3_budget)
