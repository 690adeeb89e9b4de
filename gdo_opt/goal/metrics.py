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
from gdo_opt.goal.metrics_read import (  # noqa: F401 - re-exported: the reading side lives there
    GDO_COLUMNS,
    NESTED,
    MetricsPrefetch,
    _lift_nested,
    _read_jsonl,
    _slim,
    read_metrics_file,
)
from gdo_opt.goal.preset import DESCRIPTORS

# The columns whose statistics over every file row the published ρ uses (kept raw, per file row)
LEGACY = ("loss_video", "loss_blind", "frame_diversity", "vds", "quality_score")


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
