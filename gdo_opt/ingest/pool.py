"""Pool ingest: LLaVA-OneVision / LLaVA-Video / generic JSONL or Parquet -> one candidate table.

The orchestrator of the ingest stage. The parts, in data-flow order:

    read.py      stream a file in ~8 MB blocks -> RawBlock (rows + flat messages)
    block.py     one RawBlock -> candidate rows (turn pairing, strata, fingerprints, media)
    stream.py    files -> blocks in worker processes -> rows in input order
    pool.py      (here) duplicate ids, missing media, strict mode, decontamination, profile, writing
    exclude.py   decontamination against benchmark files (read by qa_jsonl.py)
    schema.py    the table's columns and the fixed vocabularies; candidates.py: the one table loader

Same inputs -> byte-identical ``candidates.parquet`` and ``profile.json``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.errors import GdoError, ParameterError
from gdo_opt.ingest.exclude import decontaminate
from gdo_opt.ingest.profile import build_profile
from gdo_opt.ingest.read import SkipLog
from gdo_opt.ingest.schema import COLUMNS, IngestOptions
from gdo_opt.ingest.stream import build_table
from gdo_opt.schema import arrow_frame

__all__ = ["COLUMNS", "IngestOptions", "IngestResult", "ingest"]


@dataclass
class IngestResult:
    """The candidate table, its profile, and what was skipped (by reason, first examples)."""

    table: pa.Table
    profile: dict
    skips: SkipLog
    decontaminated: int
    paths: dict[str, Path] = field(default_factory=dict)
    lean: object = None  # a gdo_opt.ingest.reload.LeanSource when the rows carry no media lists

    @property
    def skipped(self) -> dict[str, int]:
        return dict(self.skips.counts)

    @property
    def examples(self) -> dict[str, list[str]]:
        return dict(self.skips.examples)

    def to_pandas(self, arrow_backed: bool = False) -> pd.DataFrame:
        """The candidate table as pandas; ``arrow_backed`` keeps text and list columns in their Arrow
        buffers (``pd.ArrowDtype``, no per-row Python objects: at 1M rows this saves ~1 GB)."""
        frame = arrow_frame(self.table) if arrow_backed else self.table.to_pandas()
        if self.lean is not None:
            frame.attrs["gdo_lean"] = self.lean  # write_outputs re-reads the exported rows' media
        return frame


def _drop_duplicate_ids(table: pa.Table, skips: SkipLog) -> pa.Table:
    """Keep the first row (in input order) of every (prefix, id); later rows are skipped."""
    if table.num_rows == 0:
        return table
    key = pc.binary_join_element_wise(pc.utf8_slice_codeunits(table.column("qa_uid"), 0, 3),
                                      table.column("row_id"), "|")
    codes = pc.dictionary_encode(key).combine_chunks().indices.to_numpy()
    file_enc = pc.dictionary_encode(table.column("file")).combine_chunks()
    file_codes, files = file_enc.indices.to_numpy(), file_enc.dictionary.to_pylist()
    order = file_codes.astype(np.int64) * (1 << 40) + table.column("line").to_numpy()
    _, first_idx = np.unique(codes, return_index=True)
    dup = order != order[first_idx][codes]
    if not dup.any():
        return table
    dup_pos = np.flatnonzero(dup)
    row_pos = dup_pos[np.unique(order[dup_pos], return_index=True)[1]]  # one entry per skipped row
    lines, ids = table.column("line").to_numpy(), table.column("row_id")
    examples = [f"{files[file_codes[i]]}:{lines[i]}: duplicate_id (id {ids[int(i)]})" for i in row_pos[: skips.keep]]
    skips.note("duplicate_id", len(row_pos), examples)
    return table.filter(pa.array(~dup))


# ---------------------------------------------------------------- public API
def ingest(
    onevision: Sequence[str | os.PathLike] = (),
    video: Sequence[str | os.PathLike] = (),
    pool: Sequence[str | os.PathLike] = (),
    exclude: Sequence[str | os.PathLike] = (),
    target_frames: int = 32,
    strict: bool = False,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    media_root: str | os.PathLike | None = None,
    workers: int | None = None,
    check_media: bool = False,
    source_groups: dict[str, str] | None = None,
    frames_fps: float = 1.0,
    media_dir: str | os.PathLike | None = None,
    lean: bool | str = False,
) -> IngestResult:
    """Pool files -> candidate table + profile; writes ``out_dir/candidates.parquet`` and
    ``out_dir/profile.json`` atomically when ``out_dir`` is given.

    Bad rows are skipped and counted by reason (first examples with file:line); ``strict=True``
    turns any skip into a ``GdoError``. A missing file or a file with no usable row is an error.
    Embedded media bytes (Hugging Face Parquet / datasets) are written to ``media_dir`` (default
    ``out_dir/media``), one content-addressed file per distinct blob.
    ``lean=True`` (``select`` on JSONL files) keeps no ``media`` lists in memory: the result's
    ``lean`` (a ``LeanSource``) lets ``gdo_opt.ingest.reload`` rebuild them for the exported rows.
    It applies only where the rows can be re-read (JSONL files, no ``out_dir``, no ``check_media``).
    ``lean="paper"`` also skips the columns only our weighted presets read (our strata, cues and
    fingerprints): the paper goals derive theirs from the builder's view (``goal.published``).
    """
    if not (np.isfinite(float(frames_fps)) and float(frames_fps) > 0):
        raise GdoError(f"--frames-fps = {frames_fps}: must be a finite number > 0")
    if media_dir is None and out_dir is not None:
        media_dir = Path(out_dir) / "media"
    opts = IngestOptions(target_frames=int(target_frames),
                         media_root=None if media_root is None else os.path.abspath(media_root),
                         frames_fps=float(frames_fps), source_groups=source_groups,
                         media_dir=None if media_dir is None else os.path.abspath(media_dir))
    inputs = ([("onevision", p) for p in onevision] + [("video", p) for p in video]
              + [("pool", p) for p in pool])
    if lean:
        from gdo_opt.ingest.hf import is_hf_source

        if out_dir is not None or check_media or any(is_hf_source(str(p)) for _, p in inputs):
            lean = False
    if lean:
        from dataclasses import replace

        opts = replace(opts, lean="paper" if lean == "paper" else "all")
    table, skips, stats = build_table(inputs, opts, workers=workers, progress=progress)
    table = _drop_duplicate_ids(table, skips)
    if check_media:
        table = _drop_missing_media(table, skips)
    if strict and skips.total:
        first = next(ex for r in sorted(skips.examples) for ex in skips.examples[r])
        raise ParameterError("strict", f"{skips.total} bad input rows ({skips.summary()}); first: {first}")
    table, n_decon, decon_examples = decontaminate(table, exclude)
    if table.num_rows == 0:
        raise GdoError("no candidates left after skipping bad rows and decontamination")
    profile = {} if lean else build_profile(table)  # lean: select discards the profile; skip the group-bys
    profile["ingest"] = {
        "files": stats, "target_frames": opts.target_frames, "skipped": dict(sorted(skips.counts.items())),
        "skipped_examples": {r: list(v) for r, v in sorted(skips.examples.items())},
        "decontaminated": n_decon, "decontaminated_examples": decon_examples,
        "exclude": [str(p) for p in exclude],
    }
    result = IngestResult(table, profile, skips, n_decon)
    if lean:
        from gdo_opt.ingest.reload import LeanSource

        result.lean = LeanSource(opts, {str(p): kind for kind, p in inputs})
    if out_dir is not None:
        from gdo_opt.atomic import write_json, write_parquet

        out = Path(out_dir)
        result.paths = {"candidates": out / "candidates.parquet", "profile": out / "profile.json"}
        write_parquet(result.paths["candidates"], table)
        write_json(result.paths["profile"], profile)
    return result


def _drop_missing_media(table: pa.Table, skips: SkipLog) -> pa.Table:
    """Optional (``--check-media``): skip candidates whose media files do not exist (one stat per path)."""
    media = table.column("media").combine_chunks()
    flat = pc.list_flatten(media)
    enc = pc.dictionary_encode(flat)
    exists = np.array([os.path.exists(p) for p in enc.dictionary.to_pylist()], dtype=bool)
    missing_flat = ~exists[enc.indices.to_numpy()]
    parent = pc.list_parent_indices(media).to_numpy()
    missing = np.bincount(parent, weights=missing_flat, minlength=table.num_rows) > 0
    if missing.any():
        idx = np.flatnonzero(missing)
        files, lines = table.column("file"), table.column("line")
        # counted per candidate: one row's turns share media
        skips.note("missing_media", len(idx), [f"{files[int(i)]}:{lines[int(i)]}: missing_media" for i in idx[: skips.keep]])
    return table.filter(pa.array(~missing))

