"""Reading a metrics file into an Arrow table, and parsing it in a worker while the pool is ingested.

Light on purpose (numpy and pyarrow are imported where used, pandas never): ``select`` forks the
parse worker before it imports anything heavy, so the parse runs on the core the parent's imports
leave idle. ``gdo_opt.goal.metrics`` checks and aligns the table.
"""

from __future__ import annotations

from pathlib import Path

from gdo_opt.errors import GdoError
from gdo_opt.goal.preset import DESCRIPTORS

# Every numeric column of the published merged metrics (merge_metrics.py), top level or nested.
GDO_COLUMNS = ("loss_video", "loss_blind", "frame_diversity", "vds", "quality_score", "ppl", "amm", "tnc_score",
               "self_consistency", "cluster_score", "cluster_hardness", "cluster_id", "cluster_dist")
NESTED = "data_quality_metrics"
METRICS_BLOCK = 1 << 22  # bytes of metrics JSONL parsed at a time (4 MB: as fast as 8, less held)
PARSE_CHUNK = 1 << 20  # Arrow's unit of (parallel) parsing within a block


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
    """Prefetch side: parse a metrics JSONL and hand the table over as an Arrow IPC file.

    The fast path writes each block's table to the file as soon as it is parsed, so the process
    never holds the whole table (at 200k rows its peak fell from ~95 MB to ~25 MB over its
    imports); the parent finishes it (``_finish``) with the returned ignored keys. Returns (kind,
    those keys), or (kind, None) after the inferred fallback read (complete as written). Errors
    need no wording here: the parent re-reads in place and raises the serial read's."""
    import pyarrow as pa

    from gdo_opt.workers import spill_table

    p = Path(path)
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


class MetricsPrefetch:
    """A merged-metrics JSONL parsed in a forked process while the pool is ingested.

    ``select`` on raw JSONL spent ~1 s (200k pairs) to ~5 s (1M) parsing the metrics after the
    ingest, although the parse needs nothing from it. The process is forked before anything heavy
    is imported or any thread started, writes the table as an Arrow file (read back memory-mapped)
    and exits at once, so its memory is gone long before the ingest ends. It dies with its parent
    (``PR_SET_PDEATHSIG``). When it fails, ``result()`` parses in place instead, so errors are the
    serial read's, raised after the ingest's. Small files, non-JSONL files and non-Linux systems
    are parsed in place when asked."""

    def __init__(self, path: str | Path):
        import os
        import sys
        import tempfile

        self.path, self._proc, self._dir = Path(path), None, None
        p = self.path
        if (sys.platform.startswith("linux") and p.suffix.lower() in (".jsonl", ".json", ".ndjson") and p.is_file()
                and p.stat().st_size >= PREFETCH_FROM):
            import multiprocessing as mp

            self._dir = tempfile.mkdtemp(prefix="gdo-metrics-")
            self._proc = mp.get_context("fork").Process(
                target=_prefetch_main, args=(str(p), self._dir, os.getpid()), daemon=True, name="gdo-metrics")
            self._proc.start()

    def result(self):
        """(table, kind), as ``read_metrics_file`` returns them."""
        if self._proc is None:
            return read_metrics_file(self.path)
        try:
            import json

            from gdo_opt.workers import load_spill

            self._proc.join()
            done = Path(self._dir) / "done.json"
            if not done.is_file():  # the parse failed there: here it raises the serial read's error
                return read_metrics_file(self.path)
            info = json.loads(done.read_text())
            table = load_spill(f"{self._dir}/metrics.arrow")
            return (table if info["other"] is None else _finish(table, info["other"])), info["kind"]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the process (if still running) and remove its files; a mapping stays valid."""
        import shutil

        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _prefetch_main(path: str, folder: str, parent: int) -> None:
    """The prefetch process: parse to ``folder``/metrics.arrow, then mark it done (kind and the
    ignored keys ``_finish`` adds) in done.json; on any error exit quietly without the mark."""
    import json
    import os

    from gdo_opt.workers import _set_pdeathsig

    _set_pdeathsig()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    try:
        from gdo_opt.memory import return_freed_memory

        return_freed_memory()
        kind, other = _parse_to_spill(path, os.path.join(folder, "metrics.arrow"))
        with open(os.path.join(folder, "done.tmp"), "w") as handle:
            json.dump({"kind": kind, "other": other}, handle)
        os.replace(os.path.join(folder, "done.tmp"), os.path.join(folder, "done.json"))
    except BaseException:  # noqa: BLE001 - the parent re-reads in place and reports the error
        os._exit(1)


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
