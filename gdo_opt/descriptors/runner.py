"""Sharded, resumable descriptor extraction (one process, or one rank of ``torchrun``).

The plan is global and deterministic: candidates sorted by (media count, text length, qa_uid) are
cut into fixed-size chunks; chunk c belongs to rank ``c % world_size``. Every chunk is written
atomically as ``rank{r:03d}-chunk{c:06d}.parquet``; a chunk whose file exists (under any rank) is
finished, so a restart, even with another world size, skips it. Because chunk contents, micro-batches
and the sampler are fixed by the plan, 1-process, N-process and resumed runs produce the same rows.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gdo_opt.atomic import write_json, write_parquet
from gdo_opt.descriptors import DEFAULT_DESCRIPTORS, registry
from gdo_opt.descriptors.base import Descriptor, ExtractContext
from gdo_opt.descriptors.model_free import FEATURE_DIM
from gdo_opt.descriptors.published import PUB_FEAT_DIM
from gdo_opt.descriptors.settings import describe, resolve
from gdo_opt.errors import GdoError, ParameterError

MANIFEST = "manifest.json"
# Options that change what a chunk contains or its values: a resume must use the same ones.
PLAN_OPTIONS = (
    "mode", "frames", "image_frames", "text_norm", "loss_span", "jaccard", "motion", "motion_frames",
    "chunk_size", "temporal_mode", "coverage_mode", "stability_k", "max_new_tokens",
    "temperature", "top_k", "top_p", "seed", "batch_size", "token_budget", "dtype",
    "ost_val", "ost_model", "ost_mode", "ost_lr", "ost_params", "ost_proj_dim", "ost_proj", "ost_seed",
    "ost_max_len", "ost_exact_max", "ost_dtype", "ost_media", "ost_lora_rank",
)
VECTOR_COLUMNS = {"feat": FEATURE_DIM, "pub_feat": PUB_FEAT_DIM}  # fixed-size float32 lists in the shards


def load_candidate_table(path: str | os.PathLike) -> pd.DataFrame:
    """The candidate table (``gdo_opt.ingest.candidates``), with unique qa_uids (shards are keyed by them)."""
    from gdo_opt.ingest.candidates import load_candidates

    table = load_candidates(path)
    if table["qa_uid"].duplicated().any():
        uid = table.loc[table["qa_uid"].duplicated(), "qa_uid"].iloc[0]
        raise GdoError(f"{path}: duplicate qa_uid {uid}")
    return table


def plan_chunks(table: pd.DataFrame, chunk_size: int, frames: int) -> list[np.ndarray]:
    """Row positions of each chunk: similar lengths together, so micro-batches pad little."""
    if chunk_size < 1:
        raise ParameterError("chunk_size", "must be >= 1", chunk_size)
    n_media = table["media"].map(lambda m: 0 if m is None else len(m)).to_numpy()
    n_media = np.where(table["media_kind"].to_numpy() == "video", frames, np.minimum(n_media, frames))
    text = (table["question"].str.len() + table["answer"].str.len()).to_numpy()
    order = np.lexsort((table["qa_uid"].to_numpy(), text, n_media))
    return [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]


def chunk_path(out: Path, rank: int, chunk: int) -> Path:
    return out / f"rank{rank:03d}-chunk{chunk:06d}.parquet"


def finished_chunks(out: Path) -> set[int]:
    return {int(p.stem.split("-chunk")[1]) for p in out.glob("rank*-chunk*.parquet")}


def distributed_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment (0, 1, 0 outside it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _manifest(candidates: Path, table: pd.DataFrame, names: list[str], options: dict, n_chunks: int, model) -> dict:
    digest = hashlib.sha256("\n".join(sorted(table["qa_uid"].astype(str))).encode()).hexdigest()[:16]
    return {
        "version": 1,
        "candidates": str(candidates),
        "n_candidates": int(len(table)),
        "qa_uid_digest": digest,
        "descriptors": names,
        "model": Path(model).name if model else None,
        "n_chunks": n_chunks,
        "options": {k: options.get(k) for k in PLAN_OPTIONS},
    }


def _check_manifest(out: Path, manifest: dict) -> None:
    import json

    path = out / MANIFEST
    if not path.is_file():
        return
    old = json.loads(path.read_text(encoding="utf-8"))
    for key in ("qa_uid_digest", "descriptors", "model", "n_chunks", "options"):
        if old.get(key) != manifest.get(key):
            raise GdoError(
                f"{path}: shards were made with a different {key} ({old.get(key)!r} vs {manifest.get(key)!r}); "
                "use a new --out folder"
            )


def _shard_table(batch: pd.DataFrame, values: dict[str, np.ndarray], columns: list[str], errors: dict) -> pa.Table:
    arrays = {"qa_uid": pa.array(batch["qa_uid"].astype(str).tolist(), pa.string())}
    for column in columns:
        if column in VECTOR_COLUMNS:
            flat = np.asarray(values[column], dtype=np.float32).reshape(-1)
            arrays[column] = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), VECTOR_COLUMNS[column])
        else:
            arrays[column] = pa.array(np.asarray(values[column], dtype=np.float64), pa.float64())
    arrays["error"] = pa.array(["; ".join(errors.get(u, [])) for u in batch["qa_uid"].astype(str)], pa.string())
    return pa.table(arrays)


def _init_distributed(world: int, device: str):
    import torch.distributed as dist

    if world > 1 and dist.is_available() and not dist.is_initialized() and "MASTER_ADDR" in os.environ:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        return dist
    return dist if world > 1 and dist.is_available() and dist.is_initialized() else None


def run_extract(
    candidates: str | os.PathLike,
    out: str | os.PathLike,
    model: str | os.PathLike | None = None,
    descriptors: list[str] | None = None,
    options: dict[str, Any] | None = None,
    progress: bool = True,
    stop_after_chunks: int | None = None,
) -> dict[str, Any]:
    """Compute the selected descriptors for this rank's chunks; returns counts for this rank.

    Every argument is checked before anything is loaded or created (``check_extract``)."""
    opts, names, instances, needs = check_extract(candidates, out, model, descriptors, options)
    rank, world, local_rank = distributed_env()
    out = Path(out)
    candidates = Path(candidates)
    opts["candidates"] = str(candidates)  # OST decontaminates its target set against the whole pool
    table = load_candidate_table(candidates).sort_values("qa_uid", kind="stable").reset_index(drop=True)
    chunks = plan_chunks(table, int(opts["chunk_size"]), int(opts["frames"]))
    manifest = _manifest(candidates, table, names, opts, len(chunks), model)
    _check_manifest(out, manifest)
    out.mkdir(parents=True, exist_ok=True)

    ctx = ExtractContext(options=opts, rank=rank, world_size=world)
    device = str(opts["device"])
    threads_before = None
    if needs:
        import torch

        threads_before = torch.get_num_threads()  # restored at the end: a library call must not leak it

        from gdo_opt.descriptors.devices import resolve_device
        from gdo_opt.descriptors.engine import ModelEngine
        from gdo_opt.descriptors.model import load_model

        device = resolve_device(device, local_rank)  # a device torch cannot see: one-line error
        if device == "cpu" and opts.get("threads"):
            torch.set_num_threads(int(opts["threads"]))
        elif device == "cpu":
            # The CPU worker processes (motion, colour statistics) get `workers` cores, torch the rest
            # (at least 1): intra-op threads that wait on a busy core cost more than they give (on a
            # loaded 2-core box the default extraction ran at 0.5 cand/s with torch's 2 threads and
            # ~6 with 1; docs/descriptors.md).
            cores = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world)))
            torch.set_num_threads(max(1, cores - int(opts["workers"])))
        ctx.model, ctx.processor = load_model(model, device, opts["dtype"])
        ctx.dtype, ctx.device = ctx.model.dtype, device
        ctx.engine = ModelEngine(ctx.model, ctx.processor, device, opts)
        for d in instances:
            ctx.engine.request(*d.passes_for(opts))
    dist = _init_distributed(world, device) if world > 1 else None
    if rank == 0:
        write_json(out / MANIFEST, manifest)

    columns: list[str] = []
    for d in instances:
        columns.extend(c for c in _columns(d, opts) if c not in columns)
    for d in instances:
        d.setup(ctx)

    # Descriptors with background work (motion's process pool) are collected last, so the model
    # passes of the chunk run while that work is in flight instead of after it.
    compute_order = sorted(instances, key=lambda d: type(d).prefetch is not Descriptor.prefetch)
    done = finished_chunks(out)
    mine = [c for c in range(len(chunks)) if c % world == rank and c not in done]
    workers = int(opts["workers"])
    pool = None
    if any(getattr(d, "uses_pool", False) or d.name == "motion" for d in instances) and workers > 0:
        from gdo_opt.workers import process_pool

        pool = process_pool(workers, "spawn")  # workers die with us, even on kill -9
    ctx.pool = pool
    stats = {"rank": rank, "world_size": world, "chunks": 0, "candidates": 0, "errors": 0,
             "skipped_chunks": sum(1 for c in range(len(chunks)) if c % world == rank and c in done)}
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]extract[/] rank 0/{task.fields[world]}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} cand/s"), TimeRemainingColumn(), TextColumn("errors {task.fields[errors]}"),
        console=Console(stderr=True), disable=not progress or rank != 0,
    )
    if progress and rank == 0:
        bar.console.print(f"extract: {', '.join(names)}; {describe(opts)}", highlight=False)
    start = time.perf_counter()
    try:
        with bar:
            task = bar.add_task("extract", total=sum(len(chunks[c]) for c in mine), world=world, rate=0.0, errors=0)
            for c in mine:
                if stop_after_chunks is not None and stats["chunks"] >= stop_after_chunks:
                    break
                batch = table.iloc[chunks[c]].reset_index(drop=True)
                ctx.errors = {}
                for d in instances:
                    d.prefetch(batch, ctx)
                values: dict[str, np.ndarray] = {}
                for d in compute_order:
                    try:
                        values.update(d.compute(batch, ctx))
                    except GdoError:
                        raise
                    except Exception as error:  # a broken descriptor on one chunk must not kill the run
                        for uid in batch["qa_uid"].astype(str):
                            ctx.add_error(uid, d.name, f"{type(error).__name__}: {error}")
                        for col in _columns(d, opts):
                            values[col] = (np.full((len(batch), VECTOR_COLUMNS[col]), np.nan, np.float32)
                                           if col in VECTOR_COLUMNS else np.full(len(batch), np.nan))
                write_parquet(chunk_path(out, rank, c), _shard_table(batch, values, columns, ctx.errors))
                stats["chunks"] += 1
                stats["candidates"] += len(batch)
                stats["errors"] += len(ctx.errors)
                elapsed = time.perf_counter() - start
                rate = stats["candidates"] / max(elapsed, 1e-9)
                bar.update(task, advance=len(batch), rate=rate, errors=stats["errors"])
                if stats["chunks"] == 1 and progress and rank == 0:
                    left = sum(len(chunks[c]) for c in mine) - stats["candidates"]
                    bar.console.print(f"extract: first chunk {len(batch)} candidates in {elapsed:.1f}s "
                                      f"({rate:.1f} cand/s); ETA {_duration(left / max(rate, 1e-9))} for "
                                      f"{left} more on this rank", highlight=False)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if threads_before is not None:
            import torch

            torch.set_num_threads(threads_before)
    stats["seconds"] = time.perf_counter() - start
    if dist is not None:
        import torch

        totals = torch.tensor([stats["candidates"], stats["errors"]], dtype=torch.float64)
        dist.all_reduce(totals)
        dist.barrier()
        stats["all_candidates"], stats["all_errors"] = int(totals[0]), int(totals[1])
        dist.destroy_process_group()
    return stats


def _columns(d: Descriptor, opts: dict) -> tuple[str, ...]:
    return d.columns_for(opts) if hasattr(d, "columns_for") else d.columns


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def check_extract(candidates, out, model, descriptors, options) -> tuple[dict, list[str], list[Descriptor], list]:
    """Check every argument of an extraction before anything is loaded or written: options (mode and
    values), descriptor names, the candidate table, the model folder, each descriptor's own options.
    Returns (resolved options, names, descriptor instances, those that need the model)."""
    opts = {"device": "auto", "dtype": "auto", **resolve(options)}
    names = list(descriptors or DEFAULT_DESCRIPTORS)
    known = registry()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ParameterError("descriptors", f"unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    instances: list[Descriptor] = [known[n]() for n in names]
    needs = [d for d in instances if d.requires_model(opts)]
    for d in instances:
        if hasattr(d, "check_options"):
            d.check_options(opts)
    if Path(out).exists() and not Path(out).is_dir():
        raise ParameterError("out", "exists and is not a folder", str(out))
    if not Path(candidates).is_file():
        raise ParameterError("candidates", "candidate table not found (run `gdo-opt ingest` first)", str(candidates))
    if needs and not model:
        raise ParameterError("model", f"required for: {', '.join(d.name for d in needs)}")
    if needs:  # a device torch cannot see is a one-line error before anything loads
        from gdo_opt.descriptors.devices import resolve_device

        resolve_device(str(opts["device"]), distributed_env()[2])
    if needs and not (Path(model) / "config.json").is_file():
        raise ParameterError("model", "not a model folder (no config.json); for a test run use "
                       "`gdo-opt make-tiny-model DIR` (the demo writes one to gdo-demo/tiny-model)", str(model))
    return opts, names, instances, needs

