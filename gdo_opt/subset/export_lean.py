"""Exported rows of a lean ingest, rebuilt from their source lines and turned into JSON lines in
worker processes.

At K = 50k on a 1M-pair pool the two outputs hold ~550k rows (Uni-10x is 10·K): re-reading and
formatting them was the longest part of ``select`` in one process. The parent only picks the wanted
lines out of each file block (no parsing); forked workers parse them with the ingest pipeline
(``gdo_opt.ingest.reload.rebuild``) and build the lines (``subset.export.sft_encoded``); the parent
spools them. Each line carries its pool row, so the outputs do not depend on which worker finished
first (``write_sft_sets`` orders every output by qa_uid).
"""

from __future__ import annotations

import os
import sys
from collections import deque

import numpy as np
import pandas as pd
import pyarrow as pa

PARALLEL_FROM = 20_000  # exported rows below which the work stays in this process
_CONTEXT: dict = {}  # set before the fork; the workers read it (copy-on-write)


def _block_lines(task) -> tuple[np.ndarray, bytes, np.ndarray]:
    from gdo_opt.ingest.reload import rebuild
    from gdo_opt.ingest.stream import LEAN_DROPPED
    from gdo_opt.subset.export import sft_encoded

    file, kind, buf, numbers, at = task
    c = _CONTEXT
    table = rebuild(file, kind, buf, numbers, c["uids"].take(pa.array(at)), c["options"])
    sub = c["exported"].iloc[at].reset_index(drop=True)
    for name in LEAN_DROPPED:
        sub[name] = pd.Series(pd.arrays.ArrowExtensionArray(table.column(name)), index=sub.index)
    rows = c["rows"][at]
    stratum = c["stratum"]
    return (rows, *sft_encoded(sub, c["rho"][rows], {k: v[rows] for k, v in c["descriptors"].items()},
                               c["frames_as"], None if stratum is None else stratum[rows]))


def lean_arrival(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The pool rows in the order ``lean_lines`` yields them."""
    from gdo_opt.ingest.reload import picked_order
    from gdo_opt.schema import text_column

    files = text_column(frame["file"]).take(pa.array(rows)).to_numpy(zero_copy_only=False)
    return rows[picked_order(files, frame["line"].to_numpy()[rows])]


def lean_lines(frame: pd.DataFrame, rows: np.ndarray, rho: np.ndarray, descriptors: dict, frames_as: str,
               stratum: np.ndarray | None, workers: int | None = None):
    """(pool rows, their JSON lines as bytes, line sizes) for the sorted pool ``rows`` of a lean frame."""
    from gdo_opt.errors import GdoError
    from gdo_opt.ingest.reload import iter_picked
    from gdo_opt.schema import text_column
    from gdo_opt.subset.export import EXPORT_COLUMNS

    lean = frame.attrs.get("gdo_lean")
    if lean is None:
        raise GdoError("candidates: no media column to export (and no source files to re-read it from)")
    kept = [c for c in EXPORT_COLUMNS if c in frame.columns]  # take only what a line prints
    exported = frame[kept].iloc[rows].reset_index(drop=True)
    exported.attrs = {}  # pandas deep-copies attrs on every row slice the workers take
    _CONTEXT.update(uids=text_column(frame["qa_uid"]).take(pa.array(rows)), options=lean.options,
                    exported=exported, rows=rows, rho=rho,
                    descriptors=descriptors, frames_as=frames_as, stratum=stratum)
    files = text_column(frame["file"]).take(pa.array(rows)).to_numpy(zero_copy_only=False)
    tasks = iter_picked(files, frame["line"].to_numpy()[rows], lean)
    workers = max(1, workers or min(2, os.cpu_count() or 1))
    found = 0
    try:
        if workers == 1 or rows.size < PARALLEL_FROM or not sys.platform.startswith("linux"):
            for task in tasks:
                found += task[4].size
                yield _block_lines(task)
        else:
            from gdo_opt.workers import frozen_heap, process_pool

            with frozen_heap():
                pool = process_pool(workers, "fork")  # the workers read _CONTEXT: fork only (Linux)
                pending: deque = deque()
                try:
                    for task in tasks:
                        found += task[4].size
                        pending.append(pool.submit(_block_lines, task))
                        if len(pending) >= 2 * workers:
                            yield pending.popleft().result()
                    while pending:
                        yield pending.popleft().result()
                finally:
                    pool.shutdown(cancel_futures=True)
    finally:
        _CONTEXT.clear()
    if found != rows.size:
        raise GdoError(f"re-reading the exported rows found {found} of {rows.size}: were the input files changed?")
