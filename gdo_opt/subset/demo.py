"""The whole chain on the built-in demo pool: demo pool -> ingest -> descriptors -> all four goal
presets -> ``out/<preset>/``. A library call first (``run_demo``); ``gdo-opt demo`` only parses flags.

Descriptors (default): the real descriptor stage (``run_extract`` + ``merge_shards``): the cheap ones
for every candidate (optical-flow motion, hashed-feature coverage, regex temporal cue) plus the tiny
offline Qwen3-VL model written into the output folder, computing dependency (VDS), difficulty (PPL)
and stability. Why these settings (``mode = fast`` plus overrides, printed by the run; `gdo-opt extract`
defaults to the published settings instead): the tiny model's images are capped at 32x32 pixels (4
tokens each), 4 frames per clip (model and optical flow), 3 samples of 6 tokens, large micro-batches,
one torch thread (the motion worker has the other core) -- that keeps the whole demo well under a
minute on 2 CPU cores. ``metrics_mode="proxy"`` (and ``auto`` when torch/transformers, the ``model`` extra, are not
installed) uses model-free GDO-format proxies instead.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

from gdo_opt.errors import GdoError, ParameterError

METRICS_MODES = ("auto", "descriptors", "proxy")
# What the demo's descriptor stage computes, and with which settings (see the module docstring).
DEMO_DESCRIPTORS = ("motion", "coverage", "temporal", "dependency", "difficulty", "stability")
DEMO_OPTIONS = {
    "mode": "fast", "coverage_mode": "hashed", "temporal_mode": "regex", "frames": 4, "stability_k": 3,
    "max_new_tokens": 6,
    "batch_size": 64, "token_budget": 32768, "chunk_size": 512, "workers": 2, "threads": 1,
    "motion_frames": 4,
}
DEMO_MAX_PIXELS = 32 * 32


def _descriptor_metrics(out: Path, candidates: Path, console, seed: int) -> Path:
    """Run the descriptor stage with the tiny model; returns the merged descriptors.parquet path."""
    from gdo_opt.descriptors.merge import merge_shards
    from gdo_opt.descriptors.runner import MANIFEST, run_extract
    from gdo_opt.descriptors.tiny_model import make_tiny_model

    start = time.perf_counter()
    model = make_tiny_model(out / "tiny-model", seed=0, max_pixels=DEMO_MAX_PIXELS)
    shards = out / "descriptors" / "shards"
    if (shards / MANIFEST).is_file():  # the demo's own scratch from an earlier run: start fresh
        shutil.rmtree(shards)
    console.print(f"descriptors: {', '.join(DEMO_DESCRIPTORS)} (tiny offline Qwen3-VL model -> {model})",
                  highlight=False)
    stats = run_extract(candidates, shards, model=model, descriptors=list(DEMO_DESCRIPTORS),
                        options={**DEMO_OPTIONS, "seed": seed}, progress=True)
    merged = out / "descriptors" / "descriptors.parquet"
    merge_shards([shards], merged, candidates=candidates, seed=seed)
    console.print(f"descriptors: {stats['candidates']} candidates in {time.perf_counter() - start:.1f}s, "
                  f"{stats['errors']} with errors -> {merged}", highlight=False)
    return merged


def run_demo(out: str | Path = "gdo-demo", seed: int = 0, metrics_mode: str = "auto", n_images: int = 900,
             n_videos: int = 160, solver: str = "auto", console=None) -> list:
    """Build the demo pool and every goal's subset under ``out``; returns the ``SelectResult`` list."""
    from rich.console import Console

    from gdo_opt.atomic import write_jsonl
    from gdo_opt.goal.metrics import load_metrics, proxy_metrics
    from gdo_opt.goal.preset import BUILTIN, WEIGHTED, load_preset
    from gdo_opt.ingest.demo_pool import make_demo_pool
    from gdo_opt.ingest.pool import ingest
    from gdo_opt.subset.pipeline import SelectConfig, build_all

    console = console or Console(stderr=True)
    if metrics_mode not in METRICS_MODES:
        raise ParameterError("metrics_mode", f"expected one of {', '.join(METRICS_MODES)}", metrics_mode)
    if n_images < 1:
        raise ParameterError("n_images", "must be >= 1", n_images)
    if n_videos < 3:
        raise ParameterError("n_videos", "must be >= 3", n_videos)
    from gdo_opt.solvers import DEFAULT_TIME_LIMIT

    config = SelectConfig(solver=solver, seed=seed, time_limit=DEFAULT_TIME_LIMIT)  # checks the solver first
    out = Path(out)
    start = time.perf_counter()
    pool = make_demo_pool(out / "pool", seed=seed, n_images=n_images, n_videos=n_videos)
    console.print(f"demo pool: {pool.n_image_rows} image rows, {pool.n_video_rows} video rows -> {pool.root}",
                  highlight=False)
    result = ingest(onevision=[pool.onevision], video=[pool.video], exclude=[pool.bench],
                    out_dir=out / "candidates", progress=False)
    frame = result.to_pandas()
    candidates = result.paths["candidates"]
    console.print(f"ingest: {len(frame)} candidates -> {candidates}", highlight=False)

    has_model_stack = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
    mode = metrics_mode
    if mode == "auto":
        mode = "descriptors" if has_model_stack else "proxy"
    if mode == "descriptors" and not has_model_stack:
        raise GdoError("metrics mode 'descriptors' needs torch and transformers (pip install 'gdo-opt[model]')")
    if mode == "descriptors":
        metrics_path = _descriptor_metrics(out, candidates, console, seed)
    else:
        console.print("metrics: model-free GDO-format proxies (motion, coverage, unigram answer NLL)",
                      highlight=False)
        table = proxy_metrics(frame)
        metrics_path = out / "metrics" / "gdo_proxy_metrics.jsonl"
        # pandas writes NaN as null (JSON has no NaN); 10 significant digits keep the bytes stable
        write_jsonl(metrics_path, json.loads(table.to_json(orient="records", double_precision=10)))
    metrics = load_metrics(metrics_path, frame["qa_uid"])
    if mode == "descriptors":
        metrics.note = "descriptor stage with the tiny offline model (random weights: the model columns " \
                       "exercise the real code path, their values carry no signal); temporal_prob = regex cue, " \
                       "coverage = hashed features"
    if mode == "proxy":
        metrics.note = "model-free proxies: amm/frame_diversity (optical flow), coverage (hashed n-grams), " \
                       "loss_video (unigram NLL of the answer); no vds/stability/temporal_prob"
    presets = [load_preset(name) for name in (*BUILTIN, *WEIGHTED)]  # the paper goals + our variants
    results = build_all(frame, metrics, presets, config, out, console)
    console.print(f"demo finished in {time.perf_counter() - start:.1f}s; outputs in {out}/", highlight=False)
    return results
