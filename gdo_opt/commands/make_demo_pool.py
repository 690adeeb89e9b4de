"""`gdo-opt make-demo-pool DIR`: write the synthetic demo pool (both LLaVA formats + real media)."""

from __future__ import annotations

import argparse

from gdo_opt import argtypes

HELP = "write the synthetic demo pool (JSONL + media)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="DIR", help="folder to write onevision.jsonl, video.jsonl, media/")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="same seed -> byte-identical files (default 0)")
    parser.add_argument("--images", type=argtypes.positive_int, default=900, help="image rows (default 900)")
    parser.add_argument("--videos", type=argtypes.positive_int, default=160, help="videos (default 160)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.errors import GdoError
    from gdo_opt.ingest.demo_pool import make_demo_pool

    if args.images < 1 or args.videos < 3:
        raise GdoError(f"--images must be >= 1 and --videos >= 3 (got {args.images}, {args.videos})")
    pool = make_demo_pool(args.out_dir, seed=args.seed, n_images=args.images, n_videos=args.videos)
    Console(stderr=True).print(
        f"demo pool: {pool.n_qa} QA pairs in {pool.n_image_rows} image rows + {pool.n_video_rows} video rows "
        f"-> {pool.onevision}, {pool.video} (exclude file {pool.bench.name}, motion truth {pool.truth.name})"
    )
    return 0
