"""Descriptor values for ρ: our ``descriptors.parquet`` or the published GDO merged-metrics JSONL.

Both are keyed by ``qa_uid``. The GDO JSONL names map onto ours so users of the original code can
switch without recomputing: ``loss_video``, ``loss_blind``, ``frame_diversity``, ``vds`` keep their
names; ``ppl`` = exp(loss_video) and ``vds`` = loss_blind − loss_video are derived when absent;
``self_consistency`` stands in for ``stability`` when the file has no ``stability``. Every column
the published ``merge_metrics.py`` writes is read (``tnc_score``, ``self_consistency``,
``cluster_score``, ``cluster_hardness``, ``cluster_id``, ``cluster_dist`` included; nested
``data_quality_metrics`` fields fill absent top-level ones, nested first as the builder reads them),
and the raw file columns are kept beside the aligned values: the published ρ normalizes with
statistics over every file row, matched or not (``gdo_opt.goal.published``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gdo_opt.errors import GdoError
from gdo_opt.goal.preset import DESCRIPTORS

# Every numeric column of the published merged metrics (merge_metrics.py), top level or nested.
GDO_COLUMNS = ("loss_video", "loss_blind", "frame_diversity", "vds", "quality_score", "ppl", "amm", "tnc_score",
               "self_consistency", "cluster_score", "cluster_hardness", "cluster_id", "cluster_dist")
NESTED = "data_quality_metrics"
# The columns whose statistics over every file row the published ρ uses (kept raw, per file row)
LEGACY = ("loss_video", "loss_blind", "frame_diversity", "vds", "quality_score")
METRICS_BLOCK = 1 << 22  # bytes of metrics JSONL parsed at a time (4 MB: as fast as 8, less held)
PARSE_CHUNK = 1 << 20  # Arrow's unit of (parallel) parsing within a block


@dataclass
class Metrics:
    """Descriptor columns aligned to the candidate table: one float64 array per descriptor."""

    values: dict[str, np.ndarray]
    source: str  # "descriptors" | "gdo-jsonl" | "proxy"
    path: str
    matched: int  # candidates that have a metrics row
    unmatched_metrics: int  # metrics rows whose qa_uid is not in the pool
    derived: list[str] = field(default_factory=list)  # columns computed from others (ppl, vds, ...)
    ignored_keys: list[str] = field(default_factory=list)
    note: str = ""
    file_columns: dict[str, np.ndarray] = field(default_factory=dict)  # raw GDO columns, one per file row
    position: np.ndarray | None = None  # file row of each candidate, -1 = no metrics row
    checks: list[str] = field(default_factory=list)  # what the schema check changed (±inf -> missing)

    def summary(self) -> dict:
        return {
            "source": self.source,
            "file": Path(self.path).name if self.path else "",
            "columns": sorted(self.values),
            "matched_candidates": int(self.matched),
            "unmatched_metrics_rows": int(self.unmatched_metrics),
            "derived": sorted(self.derived),
            "ignored_keys": sorted(self.ignored_keys),
            "note": self.note,
            "schema_notes": list(self.checks),
        }


def read_metrics_table(path: str | Path, non_finite: str = "missing", notes: list[str] | None = None,
                       prefetched: MetricsPrefetch | None = None):
    """Read a metrics file into an Arrow table with ``qa_uid`` (string) + numeric columns, and its kind.

    Descriptor columns go through ``gdo_opt.schema.check_table``: not numeric is an error, ±inf is
    missing or an error as ``non_finite`` says (said on the console and kept in ``notes``).
    """
    path = Path(path)
    if not path.is_file():
        raise GdoError(f"{path}: metrics file not found")
    table, kind = read_metrics_file(path) if prefetched is None else prefetched.result()
    return _checked_table(path, table, kind, non_finite, notes)


def read_metrics_file(path: Path):
    """(Arrow table as parsed, kind) of a metrics file; parse errors as one-line ``GdoError``s."""
    suffix = path.suffix.lower()
    with _one_line_errors(path):
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path), "descriptors"
        if suffix in (".jsonl", ".json", ".ndjson"):
            return _read_jsonl(path), "gdo-jsonl"
        raise GdoError(f"{path}: unknown metrics format {suffix!r} (expected .parquet or .jsonl)")


class _one_line_errors:
    """pyarrow's parse errors carry the row; keep them to one line naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, _traceback):
        if error is None or isinstance(error, GdoError) or not isinstance(error, Exception):
            return False
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GdoError(f"{self.path}: cannot read metrics: {message}") from None


PREFETCH_FROM = 16 << 20  # bytes of metrics JSONL from which parsing in a worker pays for its start


def _parse_to_spill(path: str, spill: str) -> tuple[str, list[str] | None]:
    """Worker side of ``MetricsPrefetch``: parse and hand the table over as an Arrow IPC file.

    The JSONL fast path writes each block's table to the file as soon as it is parsed, so the
    worker never holds the whole table (at 200k rows its peak fell from ~95 MB to ~25 MB over its
    imports); the parent finishes it (``_finish``) with the returned ignored keys. Returns (kind,
    those keys), or (kind, None) for a table that is complete as written (parquet, the fallback)."""
    import pyarrow as pa

    from gdo_opt.workers import spill_table

    p = Path(path)
    with _one_line_errors(p):
        if p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            schema, other = _explicit_schema(p)
            rows = nulls = 0
            try:
                with pa.OSFile(spill, "wb") as sink:
                    writer = None
                    for part in _iter_parts(p, schema):
                        writer = writer or pa.ipc.new_file(sink, part.schema)
                        writer.write_table(part)
                        rows, nulls = rows + part.num_rows, nulls + part.column("qa_uid").null_count
                    if writer is not None:
                        writer.close()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                rows = 0
            if nulls < rows:
                return "gdo-jsonl", other
            spill_table(_inferred(p), spill)
            return "gdo-jsonl", None
    table, kind = read_metrics_file(p)
    spill_table(table, spill)
    return kind, None


class MetricsPrefetch:
    """A merged-metrics JSONL parsed in a forked worker while the pool is ingested.

    ``select`` on raw JSONL spent ~1 s (200k pairs) to ~5 s (1M) parsing the metrics after the
    ingest, although the parse needs nothing from it. The worker is forked before the ingest starts
    its own workers (no threads alive yet); the table comes back as a memory-mapped Arrow file. Its
    errors are raised by ``result()``, i.e. after the ingest's, in the order a serial run reports them.
    Small files, non-JSONL files and non-Linux systems are parsed in place when asked."""

    def __init__(self, path: str | Path):
        import os
        import sys
        import tempfile

        self.path, self._pool, self._future, self._dir = Path(path), None, None, None
        p = self.path
        if (sys.platform.startswith("linux") and p.suffix.lower() in (".jsonl", ".json", ".ndjson") and p.is_file()
                and p.stat().st_size >= PREFETCH_FROM):
            from gdo_opt.workers import process_pool

            self._dir = tempfile.mkdtemp(prefix="gdo-metrics-")
            self._pool = process_pool(1, "fork")
            self._future = self._pool.submit(_parse_to_spill, str(p), os.path.join(self._dir, "metrics.arrow"))

    def result(self):
        """(table, kind), as ``read_metrics_file`` returns them."""
        if self._future is None:
            return read_metrics_file(self.path)
        try:
            from gdo_opt.workers import load_spill

            kind, other = self._future.result()
            table = load_spill(f"{self._dir}/metrics.arrow")
            return (table if other is None else _finish(table, other)), kind
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker (if still running) and remove its file; the mapping stays valid."""
        import shutil

        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _checked_table(path: Path, table, kind: str, non_finite: str, notes: list[str] | None):
    if "qa_uid" not in table.column_names:
        raise GdoError(f"{path}: key qa_uid missing (metrics rows must be keyed by qa_uid)")
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _lift_nested(table)
    from gdo_opt.schema import check_table

    uid = table["qa_uid"]
    if not pa.types.is_string(uid.type) and not pa.types.is_large_string(uid.type):
        if not (pa.types.is_integer(uid.type) or pa.types.is_null(uid.type)):
            raise GdoError(f"{path}: column qa_uid: has type {uid.type}, expected text")
        table = table.set_column(table.schema.get_field_index("qa_uid"), "qa_uid", pc.cast(uid, pa.string()))
    if table["qa_uid"].null_count:
        row = int(np.flatnonzero(table["qa_uid"].is_null().to_numpy(zero_copy_only=False))[0]) + 1
        raise GdoError(f"{path}: column qa_uid, row {row}: missing value")
    spec = {c: "number" for c in table.column_names if c in DESCRIPTORS or c.startswith("z_")}
    table, found = check_table(table, spec, str(path), non_finite=non_finite)
    if notes is not None:
        notes.extend(found)
    if len(pc.unique(table["qa_uid"])) != table.num_rows:  # C++ hash: ~10x faster than pandas here
        uids = pd.Series(table["qa_uid"].to_numpy(zero_copy_only=False))
        raise GdoError(f"{path}: key qa_uid = {uids[uids.duplicated()].iloc[0]!r}: appears more than once")
    return table, kind


def _read_jsonl(path: Path):
    """The metrics JSONL, reduced to what ``align_metrics`` reads: qa_uid and the numeric columns.

    Fast path: our own block reader with an explicit schema (qa_uid text, every known numeric key
    as float64, the nested ``data_quality_metrics`` fields likewise), other keys skipped by the
    parser, each block lifted and reduced at once: at 1M rows the inferred whole read held the
    file's every column at once (+570 MB). Keys the file never fills are dropped (as if absent);
    keys outside the schema are listed as ignored from the first lines. Anything the explicit
    schema cannot parse (a text value in a numeric key, integer qa_uids, ...) falls back to the
    inferred whole read, whose checks then name the file, key and row."""
    import pyarrow as pa

    schema, other = _explicit_schema(path)
    try:
        parts = list(_iter_parts(path, schema))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _inferred(path)
    table = pa.concat_tables(parts) if parts else None
    if table is None or table.column("qa_uid").null_count == table.num_rows:  # empty, or no qa_uid key at all
        return _inferred(path)
    return _finish(table, other)


def _explicit_schema(path: Path):
    """(the fast path's parse schema, top-level keys it ignores) from the file's first lines."""
    import pyarrow as pa

    other, z_keys = _sample_keys(path)
    numeric = list(dict.fromkeys((*GDO_COLUMNS, *DESCRIPTORS, *z_keys)))
    schema = pa.schema([("qa_uid", pa.string()), *[(k, pa.float64()) for k in numeric],
                        (NESTED, pa.struct([(k, pa.float64()) for k in GDO_COLUMNS]))])
    return schema, other


def _iter_parts(path: Path, schema):
    """Each block of whole lines parsed with ``schema`` and lifted (``_lift_nested``).

    Parsed straight from the reader's reused buffer (no copy of the block), as 1 MB chunks on
    Arrow's threads: cache-sized and parallel (0.6-0.9 s against 0.9-1.4 s for one 8 MB chunk on
    200k rows); a longer line raises, and the callers fall back to the inferred read. Our own
    block splitter, not ``pj.open_json``: that reader decodes far ahead of its consumer (+590 MB
    at 1M rows, measured); here one block of lines is in memory at a time."""
    import pyarrow as pa
    import pyarrow.json as pj

    from gdo_opt.ingest.read import iter_jsonl_views

    chunked = pj.ReadOptions(block_size=PARSE_CHUNK)
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    for view, _, _ in iter_jsonl_views(path, METRICS_BLOCK):
        yield _lift_nested(pj.read_json(pa.BufferReader(pa.py_buffer(view)), read_options=chunked,
                                        parse_options=parse))


def _inferred(path: Path):
    """The whole file read with inferred types (the fallback; its checks name key and row)."""
    import pyarrow.json as pj

    return _slim(_lift_nested(pj.read_json(path, read_options=pj.ReadOptions(block_size=METRICS_BLOCK))))


def _finish(table, other: list[str]):
    """Drop the numeric keys the file never fills (as if absent); list the keys outside the schema
    as ignored (all-missing columns, as the inferred read would show them)."""
    import pyarrow as pa

    empty = [c for c in table.column_names if c != "qa_uid" and table.column(c).null_count == table.num_rows]
    table = table.drop_columns(empty)
    for name in other:
        table = table.append_column(name, pa.nulls(table.num_rows))
    return table


def _sample_keys(path: Path, lines: int = 64) -> tuple[list[str], list[str]]:
    """(top-level keys outside the numeric schema, z_* keys) seen in the first ``lines`` rows."""
    import json

    other, z_keys = {}, {}
    with open(path, "rb") as handle:
        for _, line in zip(range(lines), handle):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            for key in row if isinstance(row, dict) else ():
                if key.startswith("z_"):
                    z_keys[key] = None
                elif key not in ("qa_uid", NESTED) and key not in GDO_COLUMNS and key not in DESCRIPTORS:
                    other[key] = None
    return list(other), list(z_keys)


def _slim(table):
    import pyarrow as pa

    keep = {"qa_uid", *DESCRIPTORS, *GDO_COLUMNS}
    for i, name in enumerate(table.column_names):
        if name not in keep and not name.startswith("z_"):
            table = table.set_column(i, name, pa.nulls(table.num_rows))
    return table


def _lift_nested(table):
    """Nested ``data_quality_metrics`` fields win over top-level ones (the builder reads nested first);
    the struct column itself is dropped (no per-row dicts in pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if NESTED not in table.column_names:
        return table
    nested = table.column(NESTED)
    if not pa.types.is_struct(nested.type):
        return table.drop_columns([NESTED])
    names = [nested.type.field(i).name for i in range(nested.type.num_fields)]
    for name in names:
        if name not in GDO_COLUMNS:
            continue
        child = pc.struct_field(nested, name)
        if not (pa.types.is_integer(child.type) or pa.types.is_floating(child.type) or pa.types.is_null(child.type)):
            continue
        child = pc.cast(child, pa.float64())
        if name in table.column_names:
            top = table.column(name)
            if pa.types.is_integer(top.type) or pa.types.is_floating(top.type) or pa.types.is_null(top.type):
                child = pc.coalesce(child, pc.cast(top, pa.float64()))
            table = table.set_column(table.schema.get_field_index(name), name, child)
        else:
            table = table.append_column(name, child)
    return table.drop_columns([NESTED])


def align_metrics(qa_uid: pd.Series | np.ndarray, frame, kind: str, path: str) -> Metrics:
    """Align a metrics table (Arrow table or DataFrame) to the candidates (vectorized lookup),
    deriving GDO-compatible columns.

    Metrics whose qa_uids match no candidate are an error ("no qa_uid matches"), not an empty column.
    """
    import pyarrow.compute as pc

    from gdo_opt.schema import text_column

    index, wanted = text_column(frame["qa_uid"]), text_column(qa_uid)
    # Arrow's hash join: the file row of each candidate (-1: none); metrics qa_uids are unique
    position = pc.fill_null(pc.index_in(wanted, value_set=index), -1).to_numpy(zero_copy_only=False)
    hit = position >= 0
    if len(wanted) and len(index) and not hit.any():
        raise GdoError(f"{path}: no qa_uid matches the candidate table (metrics e.g. {index[0].as_py()!r}, "
                       f"candidates e.g. {wanted[0].as_py()!r}); were they computed for this pool?")
    values: dict[str, np.ndarray] = {}
    file_columns: dict[str, np.ndarray] = {}
    ignored = []
    names = frame.column_names if hasattr(frame, "column_names") else list(frame.columns)
    for column in names:
        if column == "qa_uid":
            continue
        if column not in DESCRIPTORS and column not in GDO_COLUMNS:
            if not column.startswith("z_"):
                ignored.append(column)
            continue
        raw = _file_values(frame, column, path)
        out = np.full(len(position), np.nan)
        out[hit] = raw[position[hit]]
        values[column] = out
        if column in LEGACY:
            file_columns[column] = raw
    derived = []
    if "ppl" not in values and "loss_video" in values:
        with np.errstate(over="ignore"):
            values["ppl"] = np.exp(values["loss_video"])
        derived.append("ppl")
    if "vds" not in values and "loss_video" in values and "loss_blind" in values:
        values["vds"] = values["loss_blind"] - values["loss_video"]
        derived.append("vds")
    if "stability" not in values and "self_consistency" in values:
        values["stability"] = values["self_consistency"]
        derived.append("stability")
    return Metrics(
        values=values,
        source=kind,
        path=str(path),
        matched=int(hit.sum()),
        unmatched_metrics=int(len(index) - np.count_nonzero(np.bincount(position[hit], minlength=len(index)))),
        derived=derived,
        ignored_keys=ignored,
        file_columns=file_columns,
        position=position.astype(np.int64),
    )


def _file_values(frame, column: str, path: str) -> np.ndarray:
    """One metrics column per file row as float64 (missing: NaN). Numeric Arrow columns convert
    straight to numpy (no pandas copy of the whole table: ~22 MB less at 200k rows, the parse's
    mapped table aside); other types go through ``pd.to_numeric`` as before (text digits parse)."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        col = frame.column(column)
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_null(col.type):
            import pyarrow.compute as pc

            raw = pc.cast(col, pa.float64(), safe=False).to_numpy()
            return raw if raw.flags.writeable else raw.copy()  # own the values: the table may be a mapped file
        from gdo_opt.schema import arrow_frame

        series = arrow_frame(pa.table({column: col}))[column]
    else:
        series = frame[column]
    try:
        return pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise GdoError(f"{path}: key {column}: not numeric") from None


def load_metrics(path: str | Path, qa_uid: pd.Series | np.ndarray, non_finite: str = "missing",
                 prefetched: MetricsPrefetch | None = None) -> Metrics:
    """Read ``path`` (parquet or GDO JSONL) and align it to the candidates' ``qa_uid``.

    ``non_finite``: "missing" (±inf values become missing, said on the console) or "reject" (error).
    ``prefetched``: the file already being parsed (``MetricsPrefetch``, started before the ingest).
    """
    notes: list[str] = []
    table, kind = read_metrics_table(path, non_finite, notes, prefetched)
    metrics = align_metrics(qa_uid, table, kind, str(path))
    metrics.checks = notes
    return metrics


def no_metrics(n: int) -> Metrics:
    """No descriptor file: every candidate is 'without descriptors' (the preset's policy applies)."""
    return Metrics(values={}, source="none", path="", matched=0, unmatched_metrics=0, note="no --metrics given")


def proxy_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """Model-free, GDO-format metrics for the demo when the descriptor stage is unavailable.

    Clearly proxies, computed from the data itself (never from ground truth):
    ``amm`` / ``frame_diversity`` = Farneback optical flow and mean frame difference of the frames
    (one computation per distinct clip); ``coverage`` = exp(−distance to the centroid) of hashed
    question/answer n-gram features; ``loss_video`` = mean negative log-likelihood of the answer's
    words under the pool's unigram answer distribution (rare answers are "hard"; no model, so no
    ``vds``, ``stability`` or ``temporal_prob``: presets drop those terms and say so in the report).
    """
    from gdo_opt.descriptors.media import motion_stats
    from gdo_opt.descriptors.model_free import hashed_features

    n = len(frame)
    kind = frame["media_kind"].astype(str).to_numpy()
    amm = np.zeros(n)
    diversity = np.zeros(n)
    moving = np.flatnonzero(kind != "image")
    if moving.size:
        first = np.array([str(m[0]) if len(m) else "" for m in frame["media"].to_numpy()[moving]], dtype=object)
        clip, clip_index = np.unique(first, return_index=True)
        stats = np.array([motion_stats(frame["media"].iat[moving[i]], kind[moving[i]]) for i in clip_index])
        where = np.searchsorted(clip, first)
        amm[moving], diversity[moving] = stats[where, 0], stats[where, 1]
    features = hashed_features(frame)
    coverage = np.exp(-np.linalg.norm(features - features.mean(axis=0), axis=1))
    words = frame["answer"].astype(str).str.lower().str.findall(r"[a-z0-9]+")
    exploded = words.explode()
    counts = exploded.value_counts()
    logp = np.log((counts + 1) / (counts.sum() + counts.size))
    nll = (-exploded.map(logp)).astype(float).groupby(level=0).mean()
    loss = nll.reindex(range(n)).to_numpy(dtype=np.float64) if frame.index.equals(pd.RangeIndex(n)) else nll.to_numpy()
    return pd.DataFrame({"qa_uid": frame["qa_uid"].astype(str).to_numpy(), "amm": amm,
                         "frame_diversity": diversity, "coverage": coverage, "loss_video": loss})
