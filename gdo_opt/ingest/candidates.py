"""The one loader of ``candidates.parquet`` that every later stage uses (descriptors, OST, select).

It resolves a folder to its ``candidates.parquet``, reads only the columns asked for, and checks
they are there, so each stage fails with one line naming the file instead of a KeyError later.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gdo_opt.errors import GdoError
from gdo_opt.ingest.schema import COLUMNS

FILENAME = "candidates.parquet"


def candidates_path(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/candidates.parquet`` for a folder; an error when it is missing."""
    p = Path(path)
    if p.is_dir():
        p = p / FILENAME
    if not p.is_file():
        raise GdoError(f"{path}: candidate table not found (run `gdo-opt ingest` first)")
    return p


def load_candidates(path: str | os.PathLike, columns: Sequence[str] | None = None):
    """Read the candidate table into pandas.

    ``columns=None`` reads the whole table and checks it has every column of the schema
    (``gdo_opt.ingest.schema.COLUMNS``); otherwise only ``columns`` are read and checked.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = candidates_path(path)
    wanted = list(COLUMNS if columns is None else columns)
    try:
        names = pq.read_schema(p).names
    except (pa.ArrowInvalid, OSError) as error:
        raise GdoError(f"{p}: not a readable Parquet file ({error})") from error
    missing = [c for c in wanted if c not in names]
    if missing:
        raise GdoError(f"{p}: not a candidate table (missing columns {', '.join(missing)})")
    try:
        table = pq.read_table(p, columns=None if columns is None else wanted)
    except (pa.ArrowInvalid, OSError) as error:
        raise GdoError(f"{p}: not a readable Parquet file ({error})") from error
    from gdo_opt.schema import CANDIDATES, NOT_NULL, check_table

    table, _ = check_table(table, CANDIDATES, str(p), not_null=tuple(c for c in NOT_NULL if c in table.column_names))
    return table.to_pandas()
