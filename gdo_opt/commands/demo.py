"""`gdo-opt demo`: the whole chain on the built-in demo pool, no arguments needed.

demo pool → ingest → descriptors (cheap ones + the tiny offline model when the descriptor stage is
installed, model-free GDO-format proxies otherwise) → all four goal presets → ./gdo-demo/<preset>/.
"""

from __future__ import annotations

import argparse

HELP = "run the whole chain on the built-in demo pool"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="gdo-demo", metavar="DIR", help="output folder (default ./gdo-demo)")
    parser.add_argument("--seed", type=int, default=0, help="demo pool and solver seed (default 0)")
    parser.add_argument("--metrics-mode", default="auto", choices=("auto", "descriptors", "proxy"),
                        help="proxy (auto): model-free GDO-format metrics, about a minute on 2 cores; "
                             "descriptors: the descriptor stage with the tiny offline model (minutes on CPU)")
    parser.add_argument("--n-images", type=int, default=900, help="demo pool image rows (default 900)")
    parser.add_argument("--n-videos", type=int, default=160, help="demo pool videos (default 160)")
    parser.add_argument("--solver", default="auto", choices=("auto", "highs", "cpsat", "greedy", "cvxpy"))


def _descriptor_metrics(out, candidates, console):
    """Run the descriptor stage with the tiny model; returns the merged descriptors.parquet path."""
    from gdo_opt.descriptors.runner import run_extract
    from gdo_opt.merge import merge_shards
    from gdo_opt.tiny_model import make_tiny_model

    model = make_tiny_model(out / "tiny-model", seed=0)
    console.print("descriptors: cheap ones + tiny offline Qwen3-VL model ...", highlight=False)
    run_extract(candidates, out / "shards", model=model, progress=False)
    merged = out / "descriptors.parquet"
    merge_shards([out / "shards"], merged, candidates=candidates)
    return merged


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from rich.console import Console

    from gdo_opt.atomic import write_jsonl
    from gdo_opt.build import SelectConfig, build_all
    from gdo_opt.errors import GdoError
    from gdo_opt.metrics import load_metrics, proxy_metrics
    from gdo_opt.pool import ingest
    from gdo_opt.preset import BUILTIN, load_preset
    from gdo_opt.synth import make_demo_pool

    console = Console(stderr=True)
    if args.n_images < 1 or args.n_videos < 3:
        raise GdoError("--n-images must be >= 1 and --n-videos >= 3")
    out = Path(args.out)
    start = time.perf_counter()
    pool = make_demo_pool(out / "pool", seed=args.seed, n_images=args.n_images, n_videos=args.n_videos)
    console.print(f"demo pool: {pool.n_image_rows} image rows, {pool.n_video_rows} video rows -> {pool.root}",
                  highlight=False)
    result = ingest(onevision=[pool.onevision], video=[pool.video], exclude=[pool.bench],
                    out_dir=out / "candidates", progress=False)
    frame = result.to_pandas()
    candidates = result.paths["candidates"]
    console.print(f"ingest: {len(frame)} candidates -> {candidates}", highlight=False)

    # The tiny-model descriptor stage takes minutes on 2 CPU cores, so the one-minute demo uses the
    # model-free proxies unless asked for the model (`--metrics-mode descriptors`).
    mode = "proxy" if args.metrics_mode == "auto" else args.metrics_mode
    if mode == "descriptors":
        metrics_path = _descriptor_metrics(out, candidates, console)
    else:
        console.print("metrics: model-free GDO-format proxies (motion, coverage, unigram answer NLL)",
                      highlight=False)
        table = proxy_metrics(frame)
        metrics_path = out / "metrics" / "gdo_proxy_metrics.jsonl"
        # pandas writes NaN as null (JSON has no NaN); 10 significant digits keep the bytes stable
        write_jsonl(metrics_path, json.loads(table.to_json(orient="records", double_precision=10)))
    metrics = load_metrics(metrics_path, frame["qa_uid"])
    if mode == "proxy":
        metrics.note = "model-free proxies: amm/frame_diversity (optical flow), coverage (hashed n-grams), " \
                       "loss_video (unigram NLL of the answer); no vds/stability/temporal_prob"
    presets = [load_preset(name) for name in BUILTIN]
    config = SelectConfig(solver=args.solver, seed=args.seed)
    build_all(frame, metrics, presets, config, out, console)
    console.print(f"demo finished in {time.perf_counter() - start:.1f}s; outputs in {out}/", highlight=False)
    return 0
