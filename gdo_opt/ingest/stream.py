"""Files -> candidate rows: streams each pool file in blocks, runs large inputs' blocks in worker
processes and reassembles them in input order, so the output does not depend on timing."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa

from gdo_opt.errors import GdoError, ParameterError
from gdo_opt.ingest import read as pool_read
from gdo_opt.ingest.block import process_block
from gdo_opt.ingest.read import SkipLog, iter_jsonl_blocks, iter_jsonl_views, parse_jsonl_block
from gdo_opt.ingest.schema import IngestOptions
from gdo_opt.workers import load_spill, process_pool, spill_table


def _check_file(path: str | os.PathLike) -> Path:
    from gdo_opt.ingest.hf import is_url

    p = Path(path)
    if is_url(str(path)) or p.is_dir():  # Hugging Face-style sources: checked by gdo_opt.ingest.hf
        return p
    if not p.exists():
        raise GdoError(f"{path}: no such file")
    if not p.is_file():
        raise GdoError(f"{path}: not a file")
    return p


def _read_span(path: str, offset: int, length: int) -> bytes:
    """A block's bytes, read by the worker itself: sending them through the pool's pipe cost the
    parent ~1.8 s of pickling and writing per GB of JSONL."""
    with open(path, "rb") as handle:
        buf = os.pread(handle.fileno(), length, offset)
    if len(buf) != length:
        raise GdoError(f"{path}: changed while it was read (the block at byte {offset} is shorter now)")
    return buf


def _jsonl_job(buf: bytes | tuple[str, int, int], first_line: int, kind: str, file: str, opts: IngestOptions,
               spill: str | None, use_threads: bool) -> tuple[pa.Table | str, SkipLog, int]:
    """Parse + process one JSONL block (its bytes, or (path, offset, length) to read). In a worker
    process the result is spilled to an Arrow IPC file (``spill``) that the parent memory-maps: no
    pickling of large tables."""
    if isinstance(buf, tuple):
        buf = _read_span(*buf)
    block = parse_jsonl_block(buf, first_line, file, use_threads=use_threads)
    table = process_block(block, kind, file, opts, paper_only=opts.lean == "paper")
    if opts.lean:
        table = lean_table(table)
    if spill is None:
        return table, block.skips, len(buf)
    return spill_table(table, spill), block.skips, len(buf)


LEAN_DROPPED = ("media", "question", "answer")


def lean_table(table: pa.Table) -> pa.Table:
    """A block's rows without their text and media (``select`` re-reads them for the exported rows
    only, ``gdo_opt.ingest.reload``), with the per-row text features the paper goals need instead."""
    from gdo_opt.goal.published_text import text_features

    feats = text_features(table.column("question"), table.column("answer"))
    table = table.drop_columns(list(LEAN_DROPPED))
    for name, values in feats.items():
        table = table.append_column(name, pa.array(values))
    return table


def _blocks(path: Path, file: str, kind: str, opts: IngestOptions, pool: ProcessPoolExecutor | None,
            workers: int, spill_dir: str | None) -> Iterable[tuple[pa.Table, SkipLog, int]]:
    """Process the blocks of one file (in worker processes when ``pool``), yielding in file order."""
    from gdo_opt.ingest.hf import is_hf_source, iter_hf_blocks

    if is_hf_source(file):  # Parquet (embedded bytes or paths), save_to_disk folders, fsspec URLs
        if opts.lean:
            raise ParameterError("lean", "re-reading rows needs JSONL inputs", file)
        for block in iter_hf_blocks(file, file, opts.media_dir, opts.media_root):
            yield process_block(block, kind, file, opts), block.skips, block.n_bytes
        return
    if pool is None:
        for buf, first_line in iter_jsonl_blocks(path):
            yield _jsonl_job(buf, first_line, kind, file, opts, None, True)
        return
    pending: deque = deque()

    def result():
        spill, block_skips, n_bytes = pending.popleft().result()
        return load_spill(spill), block_skips, n_bytes

    for k, (view, first_line, offset) in enumerate(iter_jsonl_views(path)):  # workers read the bytes
        spill = os.path.join(spill_dir, f"{k}.arrow")
        pending.append(pool.submit(_jsonl_job, (str(path), offset, len(view)), first_line, kind, file, opts, spill, False))
        if len(pending) >= 2 * workers:
            yield result()
    while pending:
        yield result()


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task) -> Text:
            rows = task.fields.get("rows", 0)
            rate = rows / task.elapsed if task.elapsed else 0.0
            return Text(f"{rows:,} QA  {rate:,.0f} rows/s", style="progress.data.speed")

    progress = Progress(TextColumn("ingest {task.description}"), BarColumn(), TaskProgressColumn(),
                        RowsPerSecond(), TimeElapsedColumn(), console=Console(stderr=True),
                        disable=not enabled, transient=False)
    return progress


def build_table(
    inputs: Sequence[tuple[str, str | os.PathLike]],
    opts: IngestOptions = IngestOptions(),
    workers: int | None = None,
    progress: bool = False,
) -> tuple[pa.Table, SkipLog, list[dict]]:
    """(kind, path) inputs -> concatenated candidate rows, skip log, per-file stats (in input order)."""
    if opts.target_frames < 1:
        raise ParameterError("target_frames", "must be >= 1", opts.target_frames)
    checked = [(kind, str(path), _check_file(path)) for kind, path in inputs]
    if not checked:
        raise ParameterError("inputs", "no input files given")
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    skips, tables, stats = SkipLog(), [], []
    total = sum(p.stat().st_size if p.is_file() else 0 for _, _, p in checked)
    bar = _progress(progress)
    pool = spill_dir = None
    if workers > 1 and total > 2 * pool_read.BLOCK_BYTES:  # small inputs: not worth starting processes
        # processes, not threads: parts of the block pipeline hold the GIL. fork where available
        # (fast start, inherits imports); workers spill results to Arrow IPC files we memory-map.
        method = "fork" if "fork" in mp.get_all_start_methods() and sys.platform == "linux" else "spawn"
        pool = process_pool(workers, method, roomy_malloc=True)  # workers die with us, even on kill -9
        spill_dir = tempfile.mkdtemp(prefix="gdo-ingest-")
    try:
        with bar:
            task = bar.add_task("", total=total, rows=0)
            done_rows = 0
            for kind, file, path in checked:
                bar.update(task, description=path.name)
                file_tables, file_skips = [], SkipLog()
                for table, block_skips, n_bytes in _blocks(path, file, kind, opts, pool, workers, spill_dir):
                    file_tables.append(table)
                    file_skips.merge(block_skips)
                    done_rows += table.num_rows
                    bar.update(task, advance=n_bytes, rows=done_rows)
                n_cand = sum(t.num_rows for t in file_tables)
                if n_cand == 0:
                    why = f" ({file_skips.total} skipped: {file_skips.summary()})" if file_skips.total else ""
                    raise GdoError(f"{file}: no usable rows{why}")
                skips.merge(file_skips)
                tables.extend(file_tables)
                stats.append({"file": file, "kind": kind, "candidates": n_cand, "skipped": file_skips.total})
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
            shutil.rmtree(spill_dir, ignore_errors=True)
    return pa.concat_tables(tables), skips, stats
