"""Throughput of the batched descriptor engine vs the one-sample-at-a-time loop doing the same work.

CPU (default): tiny offline Qwen3-VL on a small demo pool. GPU: ``--model PATH --device cuda`` with a
real-size checkpoint folder (random weights are fine) records samples/s per GPU.
Both sides compute loss_video, loss_blind (VDS, PPL), temporal need and stability (k samples).
Both are warmed up on the same few candidates first (the first forward of a fresh process pays
seconds of one-time kernel set-up, which would otherwise land on whichever path runs first), then
timed alternately ``--repeat`` times; the table shows the best run of each and the load average.

Then (``--per-descriptor``, on by default) the throughput of each descriptor on its own under the
chosen ``--mode`` (published by default: 32 frames, 5 x 32 sampled tokens, …), the numbers
docs/descriptors.md records per device.

    .venv/bin/python experiments/bench_descriptors.py [--n 48] [--mode published|fast] [--model PATH --device cuda]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="candidates (default 48)")
    parser.add_argument("--model", help="model folder (default: a fresh tiny model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--stability-k", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, help="torch CPU threads for both paths (default: torch's choice)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per path, alternating (default 2)")
    parser.add_argument("--mode", default="published", choices=("published", "fast"),
                        help="settings of the per-descriptor table (default published)")
    parser.add_argument("--per-descriptor", default=True, action=argparse.BooleanOptionalAction,
                        help="also time each descriptor on its own (default on)")
    parser.add_argument("--compare", default=True, action=argparse.BooleanOptionalAction,
                        help="batched engine vs one at a time (default on)")
    args = parser.parse_args()

    import torch

    from gdo_opt.descriptors.engine import ModelEngine
    from gdo_opt.descriptors.model import load_model
    from gdo_opt.descriptors.reference import reference_descriptors
    from gdo_opt.descriptors.settings import resolve
    from gdo_opt.descriptors.tiny_model import make_tiny_model
    from gdo_opt.ingest.demo_pool import make_demo_pool
    from gdo_opt.ingest.pool import ingest

    console = Console(stderr=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="gdo-bench-"))
    pool = make_demo_pool(tmp / "pool", seed=0, n_images=max(4, args.n // 4), n_videos=max(4, args.n // 6))
    ingest(onevision=[pool.onevision], video=[pool.video], out_dir=tmp / "cand", progress=False)
    cands = pd.read_parquet(tmp / "cand" / "candidates.parquet").sort_values("qa_uid").head(args.n)
    cands = cands.reset_index(drop=True)
    model_path = args.model or make_tiny_model(tmp / "model")
    model, proc = load_model(model_path, args.device, args.dtype)
    opts = {**resolve({"mode": "fast"}), "frames": args.frames, "stability_k": args.stability_k,
            "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "token_budget": 1 << 20, "workers": 2}
    if args.per_descriptor:
        per_descriptor(console, model, proc, cands, args)
    if not args.compare:
        return

    def batched() -> None:
        engine = ModelEngine(model, proc, args.device, opts)
        engine.request("media", "blind", "probe", "generate")
        engine.results(cands)

    def one_at_a_time() -> None:
        for row in cands.to_dict("records"):
            reference_descriptors(row, model, proc, opts)

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    warm = cands.head(4)
    engine = ModelEngine(model, proc, args.device, opts)
    engine.request("media", "blind", "probe", "generate")
    engine.results(warm)
    for row in warm.to_dict("records"):
        reference_descriptors(row, model, proc, opts)
    paths = (("batched engine", batched), ("one at a time", one_at_a_time))
    results = {name: 0.0 for name, _ in paths}
    for _ in range(max(1, args.repeat)):
        for name, fn in paths:
            sync()
            start = time.perf_counter()
            fn()
            sync()
            results[name] = max(results[name], len(cands) / (time.perf_counter() - start))
    table = Table(title=f"descriptor throughput, {len(cands)} candidates, {Path(model_path).name} on {args.device}")
    table.add_column("path")
    table.add_column("samples/s", justify="right")
    for name, rate in results.items():
        table.add_row(name, f"{rate:.2f}")
    console.print(table)
    console.print(f"speed-up: [bold]{results['batched engine'] / results['one at a time']:.1f}x[/] (target >= 8x); "
                  f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def per_descriptor(console, model, proc, cands, args) -> None:
    """Candidates/s of each descriptor alone under ``--mode`` (model passes through the engine; motion and
    the coverage features on the CPU), best of ``--repeat`` after one warm-up on 4 candidates."""
    import torch

    from gdo_opt.descriptors import registry
    from gdo_opt.descriptors.base import ExtractContext
    from gdo_opt.descriptors.engine import ModelEngine
    from gdo_opt.descriptors.settings import describe, resolve

    opts = {"mode": args.mode, "batch_size": args.batch_size, "workers": 2, "device": args.device}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    table = Table(title=f"per descriptor, {len(cands)} candidates, {args.device}")
    table.add_column("descriptor")
    table.add_column("candidates/s", justify="right")
    for name in ("motion", "dependency", "temporal", "stability", "coverage"):
        resolved, descriptor = resolve(opts), registry()[name]()
        best = 0.0
        for run in range(max(1, args.repeat) + 1):
            batch = cands.head(4) if run == 0 else cands
            ctx = ExtractContext(model=model, processor=proc, device=args.device, options=resolved)
            ctx.engine = ModelEngine(model, proc, args.device, resolved)
            ctx.engine.request(*descriptor.passes_for(resolved))
            fresh = type(descriptor)()  # no memo carried over between runs
            sync()
            start = time.perf_counter()
            fresh.compute(batch.reset_index(drop=True), ctx)
            sync()
            if run:
                best = max(best, len(batch) / (time.perf_counter() - start))
        table.add_row(name, f"{best:.2f}")
    console.print(table)
    console.print(f"settings: {describe(resolved)}")


if __name__ == "__main__":
    main()
