"""One schema check for every table we read: candidates, descriptors, metrics (pyarrow types).

Why: a candidate table whose ``media`` was a string exported one ``<image>`` per character, and a
``+inf`` descriptor value took over a quarter of the pool and most of ``gdo_1x``. Every reader calls
``check_table`` right after reading, before anything is computed. A wrong column type is an error;
a value that must be finite but is ±inf is either an error or a missing value, as the caller's
``non_finite`` policy says (``--non-finite missing|reject``); both are said in one line that names
the file, the column and the first bad row (1-based). Null and NaN are "missing" by contract.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.errors import GdoError

NON_FINITE = ("missing", "reject")
# kinds: "string", "int", "number" (int or float, finite), "string_list"
CANDIDATES = {
    "qa_uid": "string", "row_id": "string", "turn": "int", "video_uid": "string", "bucket": "string",
    "question": "string", "answer": "string", "media": "string_list", "media_kind": "string",
    "n_frames": "int", "source": "string", "source_group": "string", "duration_bucket": "string",
    "temporal_category": "string", "question_form": "string", "q_len_bucket": "string",
    "a_len_bucket": "string", "stratum": "string", "dedup_key": "string", "dedup_key_q": "string",
    "file": "string", "line": "int",
}
NOT_NULL = ("qa_uid", "media", "media_kind", "question", "answer")


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) or (
        pa.types.is_dictionary(t) and _is_string(t.value_type))


def _type_ok(kind: str, t: pa.DataType) -> bool:
    if pa.types.is_null(t):
        return True
    if kind == "string":
        return _is_string(t)
    if kind == "int":
        return pa.types.is_integer(t)
    if kind == "number":
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if kind == "string_list":
        return (pa.types.is_list(t) or pa.types.is_large_list(t)) and _is_string(t.value_type)
    raise ValueError(f"unknown kind {kind!r}")


_EXPECT = {"string": "text", "int": "integers", "number": "numbers", "string_list": "lists of text"}


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


def _first_bad_value(column: pa.ChunkedArray, kind: str) -> str:
    """Where the wrong type shows first: the first row that holds a value."""
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return f"first bad row {_first(valid)}" if valid.any() else ""


def say(message: str) -> None:
    print(f"gdo-opt: note: {message}", file=sys.stderr)


def check_table(
    table: pa.Table,
    spec: dict[str, str],
    file: str,
    *,
    not_null: tuple[str, ...] = (),
    non_finite: str = "missing",
    warn: Callable[[str], None] | None = say,
) -> tuple[pa.Table, list[str]]:
    """Check ``table`` against ``{column: kind}`` (columns absent from the table are not checked).

    Returns the table (±inf replaced by null in "number" columns under ``non_finite="missing"``) and
    the notes said on the console. Raises GdoError naming file, column and first bad row otherwise.
    """
    if non_finite not in NON_FINITE:
        raise GdoError(f"non_finite = {non_finite!r}: expected one of {', '.join(NON_FINITE)}")
    notes: list[str] = []
    for name, kind in spec.items():
        if name not in table.column_names:
            continue
        column = table.column(name)
        if not _type_ok(kind, column.type):
            where = _first_bad_value(column, kind)
            raise GdoError(f"{file}: column {name}: has type {column.type}, expected {_EXPECT[kind]}"
                           + (f" ({where})" if where else ""))
        if name in not_null and column.null_count:
            raise GdoError(f"{file}: column {name}, row {_first(column.is_null().to_numpy(zero_copy_only=False))}: "
                           "missing value")
        if kind == "string_list" and column.num_chunks and pc.sum(pc.list_value_length(column)).as_py():
            flat = pc.list_flatten(column)
            if flat.null_count:
                parent = pc.list_parent_indices(column).to_numpy()
                row = int(parent[np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0]]) + 1
                raise GdoError(f"{file}: column {name}, row {row}: a list element is null")
        if kind == "number" and pa.types.is_floating(column.type):
            values = column.to_numpy()
            bad = np.isinf(values)
            if bad.any():
                row, count = _first(bad), int(bad.sum())
                if non_finite == "reject":
                    raise GdoError(f"{file}: column {name}, row {row}: value {values[row - 1]} is not finite "
                                   f"({count} such rows; --non-finite missing treats them as missing)")
                table = table.set_column(table.schema.get_field_index(name), name,
                                         pa.array(np.where(bad, np.nan, values), column.type, mask=bad))
                note = (f"{file}: column {name}: {count} ±inf value(s) treated as missing (first row {row}; "
                        "--non-finite reject refuses them)")
                notes.append(note)
                if warn is not None:
                    warn(note)
    return table, notes


def check_unique(table: pa.Table, column: str, file: str) -> None:
    """Keys must not repeat (C++ hash; ~10x faster than pandas on millions of rows)."""
    col = table.column(column)
    if len(pc.unique(col)) != table.num_rows:
        counts = pc.value_counts(col)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise GdoError(f"{file}: column {column}: value {dup!r} appears more than once")


def text_column(series, keep_chunks: bool = False) -> pa.Array | pa.ChunkedArray:
    """A pandas column as one Arrow string array: zero copy for ``pd.ArrowDtype`` columns (the CLI's
    frame), one conversion for object columns; None / NaN become empty strings. ``keep_chunks``
    returns a ChunkedArray as it is (no concatenated copy) for callers that work chunk by chunk."""
    import pandas as pd

    if not isinstance(series, (pa.Array, pa.ChunkedArray, pd.Series)):
        series = pd.Series(np.asarray(series, dtype=object))
    if isinstance(series, (pa.Array, pa.ChunkedArray)):
        arr = series
    elif isinstance(series.dtype, pd.ArrowDtype):
        arr = pa.array(series.array)  # ArrowExtensionArray.__arrow_array__: the buffers, no copy
    else:
        arr = pa.array(series.astype(object).where(series.notna(), "").astype(str).to_numpy(dtype=object), pa.string())
    if isinstance(arr, pa.ChunkedArray) and not keep_chunks:
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return pc.fill_null(arr, "")


def _arrow_type(typ: pa.DataType):
    import pandas as pd

    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return pd.ArrowDtype(typ)
    return None


def arrow_frame(table: pa.Table):
    """pandas view of an Arrow table: numbers as numpy, text / lists as ``pd.ArrowDtype`` (zero copy)."""
    return table.to_pandas(types_mapper=_arrow_type)
