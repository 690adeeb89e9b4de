"""`gdo-opt extract`: compute descriptors into resumable Parquet shards (plain or under torchrun)."""

from __future__ import annotations

import argparse

HELP = "compute descriptors into resumable Parquet shards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gdo_opt.descriptors import DEFAULT_DESCRIPTORS

    parser.add_argument("--candidates", required=True, help="candidates.parquet from `gdo-opt ingest`")
    parser.add_argument("--out", required=True, help="shard folder (created; rerun the same command to resume)")
    parser.add_argument("--model", help="local Qwen3-VL / Qwen2.5-VL folder (needed by model descriptors)")
    parser.add_argument("--descriptors", default=",".join(DEFAULT_DESCRIPTORS),
                        help="comma list (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="max candidates per micro-batch (default 32)")
    parser.add_argument("--token-budget", type=int, default=16384,
                        help="max padded tokens per micro-batch (default 16384)")
    parser.add_argument("--frames", type=int, default=8, help="frames sampled per video (default 8)")
    parser.add_argument("--chunk-size", type=int, default=256, help="candidates per shard chunk (default 256)")
    parser.add_argument("--temporal-mode", choices=("model", "regex"), default="model")
    parser.add_argument("--coverage-mode", choices=("model", "hashed"), help="default: model with --model")
    parser.add_argument("--stability-k", type=int, default=5, help="sampled answers per candidate (default 5)")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="tokens per sampled answer (default 24)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0, help="0 = off")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=4, help="CPU workers for motion and decoding (default 4)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 suits small "
                        "models on a shared CPU)")
    parser.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK if available), cpu, cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), bf16, fp16, fp32")
    ost = parser.add_argument_group("ost (One-Step-Train utility, docs/ost.md)")
    ost.add_argument("--ost-val", help="target/validation JSONL (question/answer or ms-swift messages rows)")
    ost.add_argument("--ost-model", help="proxy model folder (default: --model)")
    ost.add_argument("--ost-mode", choices=("exact", "first_order", "auto"), help="default auto")
    ost.add_argument("--ost-lr", type=float, help="step size eta (default 1e-3)")
    ost.add_argument("--ost-params", help="lm_head (default), last_layers:N or re:<regex>")
    ost.add_argument("--ost-proj-dim", type=int, help="first-order projection size (default 2048)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--stop-after-chunks", type=int, help=argparse.SUPPRESS)  # tests: simulate a kill


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.descriptors.runner import run_extract

    names = [n.strip() for n in args.descriptors.split(",") if n.strip()]
    options = {
        "batch_size": args.batch_size, "token_budget": args.token_budget, "frames": args.frames,
        "chunk_size": args.chunk_size, "temporal_mode": args.temporal_mode, "stability_k": args.stability_k,
        "max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_k": args.top_k,
        "top_p": args.top_p, "seed": args.seed, "workers": args.workers, "device": args.device,
        "dtype": args.dtype, "threads": args.threads,
    }
    for key in ("ost_val", "ost_model", "ost_mode", "ost_lr", "ost_params", "ost_proj_dim"):
        if getattr(args, key) is not None:  # unset: the descriptor's own default (gdo_opt.descriptors.ost)
            options[key] = getattr(args, key)
    if args.coverage_mode:
        options["coverage_mode"] = args.coverage_mode
    stats = run_extract(args.candidates, args.out, model=args.model, descriptors=names, options=options,
                        progress=not args.no_progress, stop_after_chunks=args.stop_after_chunks)
    if stats["rank"] == 0:
        Console(stderr=True).print(
            f"rank 0/{stats['world_size']}: {stats['candidates']} candidates in {stats['chunks']} chunks "
            f"({stats['skipped_chunks']} already done), {stats['errors']} with errors, "
            f"{stats['candidates'] / max(stats['seconds'], 1e-9):.1f} cand/s"
            + (f"; all ranks: {stats['all_candidates']} candidates, {stats['all_errors']} errors"
               if "all_candidates" in stats else "")
        )
    return 0
