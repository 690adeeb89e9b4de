"""`gdo-opt extract`: compute descriptors into resumable Parquet shards (plain or under torchrun)."""

from __future__ import annotations

import argparse

from gdo_opt import argtypes

HELP = "compute descriptors into resumable Parquet shards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gdo_opt.descriptors import DEFAULT_DESCRIPTORS

    parser.add_argument("--candidates", required=True, help="candidates.parquet from `gdo-opt ingest`")
    parser.add_argument("--out", required=True, help="shard folder (created; rerun the same command to resume)")
    parser.add_argument("--model", help="local Qwen3-VL / Qwen2.5-VL folder (needed by model descriptors)")
    parser.add_argument("--descriptors", default=",".join(DEFAULT_DESCRIPTORS),
                        help="comma list (default: %(default)s)")
    parser.add_argument("--mode", choices=("published", "fast"), default="published",
                        help="published (default): every definition and default of the published GDO extractor; "
                             "fast: our cheaper variants (docs/descriptors.md); single options below override it")
    parser.add_argument("--batch-size", type=int, help="max candidates per micro-batch (default 32)")
    parser.add_argument("--token-budget", type=int, help="max padded tokens per micro-batch (default 16384)")
    parser.add_argument("--frames", type=int, help="frames fed to the model per video (published 32, fast 8)")
    parser.add_argument("--image-frames", choices=("first", "all"), help="image rows: first image (published) or all")
    parser.add_argument("--loss-span", choices=("turn", "answer"),
                        help="loss tokens: answer + end of turn (published) or the answer only (fast)")
    parser.add_argument("--chunk-size", type=int, help="candidates per shard chunk (default 256)")
    parser.add_argument("--temporal-mode", choices=("prompt", "probe", "regex"),
                        help="prompt (published: 3-token greedy answer), probe (fast: logits after the answer), regex")
    parser.add_argument("--coverage-mode", choices=("published", "hidden", "hashed"),
                        help="published (hashed text + RGB stats + descriptors), hidden (hidden states), hashed")
    parser.add_argument("--motion", choices=("published", "fast"), help="published: 224x224, Farneback 2/2; fast: 160 px, 3/3")
    parser.add_argument("--motion-frames", type=int, help="frames for optical flow (default 8)")
    parser.add_argument("--stability-k", type=int, help="sampled answers per candidate (default 5)")
    parser.add_argument("--max-new-tokens", type=int, help="tokens per sampled answer (published 32, fast 24)")
    parser.add_argument("--temperature", type=float, help="published 0.8, fast 1.0")
    parser.add_argument("--top-k", type=int, help="0 = off (default)")
    parser.add_argument("--top-p", type=float, help="published 0.9, fast 1.0")
    parser.add_argument("--jaccard", choices=("words", "tokens"), help="words of the decoded answers (published) or token ids")
    parser.add_argument("--seed", type=argtypes.seed, help="sampling seed (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="CPU worker processes for motion and colour statistics; on CPU torch gets the remaining cores (default 2)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 suits small "
                        "models on a shared CPU)")
    parser.add_argument("--device", default="auto", type=argtypes.device, help="auto (cuda:LOCAL_RANK if available), cpu, cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), bf16, fp16, fp32")
    ost = parser.add_argument_group("ost (One-Step-Train utility, docs/ost.md)")
    ost.add_argument("--ost-val", help="target/validation JSONL (question/answer or ms-swift messages rows)")
    ost.add_argument("--ost-model", help="proxy model folder (default: --model)")
    ost.add_argument("--ost-mode", choices=("exact", "first_order", "auto"), help="default auto")
    ost.add_argument("--ost-lr", type=float, help="step size eta (default 1e-3)")
    ost.add_argument("--ost-params", help="all (default: the whole proxy, with media), lora (peft adapters), lm_head, "
                     "last_layers:N or re:<regex>")
    ost.add_argument("--ost-lora-rank", type=int, help="LoRA rank for --ost-params lora (default 8)")
    ost.add_argument("--ost-text-only", action="store_true",
                     help="the text-only, vmap-batched scorer (subsets + projected first order; no media)")
    ost.add_argument("--ost-proj-dim", type=int, help="first-order projection size (default 2048)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--stop-after-chunks", type=int, help=argparse.SUPPRESS)  # tests: simulate a kill


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.descriptors.runner import run_extract

    names = [n.strip() for n in args.descriptors.split(",") if n.strip()]
    keys = ("mode", "batch_size", "token_budget", "frames", "image_frames", "loss_span", "chunk_size",
            "temporal_mode", "coverage_mode", "motion", "motion_frames", "stability_k", "max_new_tokens",
            "temperature", "top_k", "top_p", "jaccard", "seed", "workers", "device", "dtype", "threads")
    options = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    for key in ("ost_val", "ost_model", "ost_mode", "ost_lr", "ost_params", "ost_proj_dim", "ost_lora_rank"):
        if getattr(args, key) is not None:  # unset: the descriptor's own default (gdo_opt.descriptors.ost)
            options[key] = getattr(args, key)
    if args.ost_text_only:
        options["ost_media"] = False
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
