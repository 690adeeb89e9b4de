"""Subsets as Parquet too (``--parquet``): the same rows as the ms-swift JSONL, columnar.

The Parquet file is read back from the JSONL just written, so both hold exactly the same rows
and fields (``messages``, ``images``/``videos``, ``qa_uid``, ``video_uid``, ``meta``) and
`datasets.load_dataset("parquet", ...)`, pandas or DuckDB can open a subset without parsing JSON.
"""

from __future__ import annotations

from pathlib import Path

from gdo_opt.atomic import atomic_path
from gdo_opt.errors import GdoError


def jsonl_to_parquet(jsonl: str | Path, out: str | Path) -> int:
    """Convert one exported JSONL file to Parquet (zstd) atomically; returns the row count."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    try:
        table = pj.read_json(jsonl, read_options=pj.ReadOptions(block_size=1 << 24))
    except pa.ArrowInvalid as error:
        raise GdoError(f"--parquet: {Path(jsonl).name} has fields whose type varies between rows "
                       f"(frame lists and video files both as videos?): {error}; use --frames-as images") from None
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return table.num_rows
