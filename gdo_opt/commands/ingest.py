"""`gdo-opt ingest`: pool JSONL/Parquet -> DIR/candidates.parquet + DIR/profile.json."""

from __future__ import annotations

import argparse
import json

from gdo_opt import argtypes

HELP = "pool JSONL/Parquet -> candidates.parquet + profile"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onevision", action="append", default=[], metavar="FILE",
                        help="LLaVA-OneVision JSONL (qa_uid ov::{id}::t{k}); repeatable")
    parser.add_argument("--video", action="append", default=[], metavar="FILE",
                        help="LLaVA-Video JSONL (qa_uid vv::{id}::t{k}); repeatable")
    parser.add_argument("--pool", action="append", default=[], metavar="FILE",
                        help="generic JSONL or Parquet with messages + images/videos (gen::{id}::t{k}); repeatable. "
                             "--onevision/--video/--pool also take Hugging Face data: Parquet with embedded image "
                             "bytes, a folder of Parquet shards, a `datasets` save_to_disk folder, or any fsspec URL")
    parser.add_argument("--exclude", action="append", default=[], metavar="FILE",
                        help="benchmark/eval JSONL: candidates whose question or QA appears there are dropped")
    parser.add_argument("--target-frames", type=argtypes.positive_int, default=32, help="resample frame lists to N frames (default 32)")
    parser.add_argument("--media-root", default=None,
                        help="resolve relative media paths against this folder (default: each file's folder)")
    parser.add_argument("--media-dir", default=None, metavar="DIR",
                        help="where embedded media bytes are written, one file per distinct blob named by its "
                             "SHA-256 (default: OUT/media)")
    parser.add_argument("--source-groups", default=None, metavar="JSON",
                        help="JSON object data_source -> group (default: prefix before the first '/' or '_')")
    parser.add_argument("--frames-fps", type=argtypes.positive_float, default=1.0,
                        help="frame rate assumed for frame lists without `duration` (default 1)")
    parser.add_argument("--check-media", action="store_true", help="skip candidates whose media files are missing")
    parser.add_argument("--strict", action="store_true", help="any bad input row is an error (exit 2)")
    parser.add_argument("--workers", type=argtypes.positive_int, default=None, help="worker processes for JSONL blocks (default: min(4, cores))")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def run(args: argparse.Namespace) -> int:
    from gdo_opt.errors import GdoError
    from gdo_opt.ingest.pool import ingest
    from gdo_opt.ingest.profile import print_profile

    groups = None
    if args.source_groups:
        try:
            with open(args.source_groups, encoding="utf-8") as handle:
                groups = json.load(handle)
        except FileNotFoundError as error:
            raise GdoError(f"{args.source_groups}: no such file") from error
        except ValueError as error:
            raise GdoError(f"{args.source_groups}: not valid JSON ({error})") from error
        if not isinstance(groups, dict) or not all(isinstance(v, str) for v in groups.values()):
            raise GdoError(f"{args.source_groups}: expected a JSON object mapping data_source -> group name")
    if args.workers is not None and args.workers < 1:
        raise GdoError(f"--workers must be >= 1 (got {args.workers})")
    result = ingest(onevision=args.onevision, video=args.video, pool=args.pool, exclude=args.exclude,
                    target_frames=args.target_frames, strict=args.strict, out_dir=args.out,
                    progress=not args.no_progress, media_root=args.media_root, workers=args.workers,
                    check_media=args.check_media, source_groups=groups, frames_fps=args.frames_fps,
                    media_dir=args.media_dir)
    print_profile(result.profile)
    from rich.console import Console

    Console(stderr=True).print(f"wrote {result.paths['candidates']} and {result.paths['profile']}", highlight=False)
    return 0
