"""`gdo-opt select`: one goal's 1x subset, its Uni-kx baseline and the report."""

from __future__ import annotations

import argparse

HELP = "build one goal's 1x subset (+ Uni-kx baseline, report)"
ABLATE = {"vds": ("vds",), "ppl": ("ppl", "loss_video"), "self_consistency": ("stability", "quality_score")}


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
    from gdo_opt.solvers import DEFAULT_TIME_LIMIT, backend_names

    parser.add_argument("--solver", default="auto", choices=backend_names(),
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
    parser.add_argument("--ablate", action="append", default=[], choices=sorted(ABLATE),
                        help="drop a descriptor family from the score (repeatable)")
    parser.add_argument("--no-html", action="store_true", help="skip report.html")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a solver status line per phase on stderr (pricing round, core size, LP bound, "
                             "incumbent, gap, elapsed); default: on when stderr is a terminal")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_pool_arguments(parser)
    parser.add_argument("--preset", default="temp_plus",
                        help="packaged preset name (minloss, diverse, temp, temp_plus) or a .toml path")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def load_inputs(args: argparse.Namespace):
    """The candidate table and aligned metrics, from --candidates or on-the-fly ingest."""
    from gdo_opt.errors import GdoError
    from gdo_opt.goal.metrics import load_metrics, no_metrics

    if args.candidates and (args.onevision or args.video):
        raise GdoError("give either --candidates or --onevision/--video, not both")
    if args.candidates:
        from gdo_opt.ingest.pool import load_candidates

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


def config_from(args: argparse.Namespace):
    from gdo_opt.errors import GdoError
    from gdo_opt.subset.pipeline import SelectConfig

    if args.baseline_multiplier < 0:
        raise GdoError(f"--baseline-multiplier = {args.baseline_multiplier}: must be >= 0")
    if args.time_limit is not None and args.time_limit <= 0:
        raise GdoError(f"--time-limit = {args.time_limit}: must be > 0")
    if not 0 <= args.mip_gap < 1:
        raise GdoError(f"--mip-gap = {args.mip_gap}: must be in [0, 1)")
    ablate = tuple(d for name in args.ablate for d in ABLATE[name])
    return SelectConfig(target_count=args.target_count, solver=args.solver, time_limit=args.time_limit,
                        mip_gap=args.mip_gap, seed=args.seed, baseline_multiplier=args.baseline_multiplier,
                        frames_as=args.frames_as, ablate=ablate, html=not args.no_html,
                        progress=_progress_wanted(args))


def run(args: argparse.Namespace) -> int:
    from gdo_opt.goal.preset import load_preset
    from gdo_opt.subset.pipeline import select_subset, write_outputs

    preset = load_preset(args.preset)  # validate the preset before reading a large pool
    config = config_from(args)
    frame, metrics = load_inputs(args)
    result = select_subset(frame, metrics, preset, config)
    write_outputs(result, frame, metrics, args.out)
    return 0
