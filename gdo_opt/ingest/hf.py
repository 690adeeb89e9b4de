"""Hugging Face-style pools: Parquet (a file, a folder of shards, or any fsspec URL) and `datasets`
folders written by ``save_to_disk``, with media given as paths or as embedded bytes.

LLaVA-OneVision ships on the Hub as Parquet whose ``image`` column is a ``{'bytes', 'path'}`` struct.
Extraction and export need real files, so every embedded blob is written once under the output's
media folder, named by its SHA-256 (``media/ab/abcd….png``): the same image in two rows, two files or
two runs is one file, written atomically, and the candidate table points at it. Everything is
streamed in record batches (small ones when the batch carries bytes), read with pyarrow directly;
`datasets` is not needed to read its own on-disk format (Arrow IPC streams + ``state.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.errors import GdoError

MEDIA_COLUMNS = {"images": "images", "image": "images", "videos": "videos", "video": "videos"}
TEXT_BATCH_ROWS = 200_000
BYTES_BATCH_ROWS = 1024  # batches that carry image bytes stay small (a few hundred MB at most)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF87a", ".gif"), (b"GIF89a", ".gif"),
          (b"BM", ".bmp"), (b"\x1aE\xdf\xa3", ".webm"))
_KNOWN_EXT = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".mp4", ".webm", ".mkv",
              ".avi", ".mov"}


def is_url(source: str) -> bool:
    return "://" in str(source)


def is_hf_source(source: str | os.PathLike) -> bool:
    """A URL, a folder (save_to_disk output or Parquet shards) or a local Parquet file."""
    s = str(source)
    if is_url(s):
        return True
    p = Path(s)
    return p.is_dir() or (p.is_file() and p.suffix.lower() in (".parquet", ".pq"))


@dataclass
class HFSource:
    """One resolved source: the filesystem, the data files and their format (parquet | arrow)."""

    fs: object
    files: list[str]
    fmt: str
    base: str  # folder that relative media paths are resolved against (local sources)


def resolve(source: str | os.PathLike) -> HFSource:
    """Find the data files of a source, in a stable order (splits as listed, shards sorted)."""
    s = str(source)
    if is_url(s):
        try:
            import fsspec
        except ImportError as error:  # pragma: no cover - fsspec ships with the package
            raise GdoError(f"{s}: reading URLs needs fsspec (pip install fsspec)") from error
        try:
            fs, path = fsspec.core.url_to_fs(s)
        except (ImportError, ValueError) as error:
            raise GdoError(f"{s}: no filesystem for this URL ({error})") from error
    else:
        from fsspec.implementations.local import LocalFileSystem

        fs, path = LocalFileSystem(), os.path.abspath(s)
    try:
        if any(c in path for c in "*?["):
            files = sorted(fs.glob(path))
            return HFSource(fs, files, _fmt(files, s), posixpath.dirname(path))
        if not fs.exists(path):
            raise GdoError(f"{s}: no such file or folder")
        if not fs.isdir(path):
            return HFSource(fs, [path], _fmt([path], s), posixpath.dirname(path))
        return HFSource(fs, *_folder_files(fs, path, s), path)
    except (OSError, ValueError) as error:
        raise GdoError(f"{s}: cannot list ({error})") from error


def _fmt(files: list[str], source: str) -> str:
    if not files:
        raise GdoError(f"{source}: no data files match")
    if all(f.endswith(".arrow") for f in files):
        return "arrow"
    if all(f.lower().endswith((".parquet", ".pq")) for f in files):
        return "parquet"
    raise GdoError(f"{source}: expected Parquet (.parquet) or Arrow (.arrow) data files, got {files[0]}")


def _folder_files(fs, path: str, source: str) -> tuple[list[str], str]:
    """save_to_disk folder (Dataset or DatasetDict) or a folder of Parquet shards."""
    join = posixpath.join
    if fs.exists(join(path, "dataset_dict.json")):
        with fs.open(join(path, "dataset_dict.json"), "rb") as handle:
            splits = json.load(handle).get("splits", [])
        files = [f for split in splits for f in _folder_files(fs, join(path, split), source)[0]]
        return files, _fmt(files, source)
    if fs.exists(join(path, "state.json")):
        with fs.open(join(path, "state.json"), "rb") as handle:
            state = json.load(handle)
        files = [join(path, entry["filename"]) for entry in state.get("_data_files", [])]
        return files, _fmt(files, source)
    files = sorted(f for f in fs.find(path) if f.lower().endswith((".parquet", ".pq")))
    return files, _fmt(files, source)


def iter_tables(src: HFSource, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Record batches of every data file, as tables (only ``columns`` when given)."""
    import pyarrow.parquet as pq

    for file in src.files:
        try:
            if src.fmt == "parquet":
                proto = src.fs.protocol
                local = "file" in (proto if isinstance(proto, (tuple, list)) else (proto,))
                with (nullcontext(file) if local else src.fs.open(file, "rb")) as handle:
                    pf = pq.ParquetFile(handle)  # local files: Arrow's own reader, no Python I/O
                    names = pf.schema_arrow.names
                    wanted = [c for c in names if columns is None or c in columns]
                    heavy = _has_bytes(pf.schema_arrow, wanted)
                    rows = BYTES_BATCH_ROWS if heavy else TEXT_BATCH_ROWS
                    for batch in pf.iter_batches(batch_size=rows, columns=wanted):
                        yield pa.Table.from_batches([batch])
            else:
                with src.fs.open(file, "rb") as handle:
                    reader = _open_arrow(handle)
                    wanted = [c for c in reader.schema.names if columns is None or c in columns]
                    limit = BYTES_BATCH_ROWS if _has_bytes(reader.schema, wanted) else TEXT_BATCH_ROWS
                    pending: list[pa.RecordBatch] = []
                    for batch in reader:
                        pending.append(batch.select(wanted))
                        if sum(b.num_rows for b in pending) >= limit:
                            yield pa.Table.from_batches(pending)
                            pending = []
                    if pending:
                        yield pa.Table.from_batches(pending)
        except (pa.ArrowInvalid, OSError) as error:
            raise GdoError(f"{file}: not readable as {src.fmt} ({error})") from error


class _ArrowFile:
    """Arrow IPC file format read batch by batch, shaped like a stream reader."""

    def __init__(self, reader):
        self.reader, self.schema = reader, reader.schema

    def __iter__(self):
        return (self.reader.get_batch(i) for i in range(self.reader.num_record_batches))


def _open_arrow(handle):
    """datasets writes Arrow IPC streams (read sequentially); accept the file format too."""
    try:
        return pa.ipc.open_stream(pa.PythonFile(handle, mode="r"))
    except pa.ArrowInvalid:
        handle.seek(0)
        return _ArrowFile(pa.ipc.open_file(pa.PythonFile(handle, mode="r")))


def _has_bytes(schema: pa.Schema, names: list[str]) -> bool:
    def binary(t: pa.DataType) -> bool:
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return True
        if pa.types.is_struct(t):
            return any(binary(t.field(i).type) for i in range(t.num_fields))
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return binary(t.value_type)
        return False

    return any(binary(schema.field(n).type) for n in names if n in MEDIA_COLUMNS)


# ---------------------------------------------------------------- media
class MediaStore:
    """Content-addressed media folder: ``put(bytes)`` -> absolute path of ``root/ab/<sha256><ext>``."""

    def __init__(self, root: str | os.PathLike, threads: int = 4):
        self.root = Path(root).resolve()
        self.threads = threads
        self.written = 0  # new files this run
        self.reused = 0  # blobs that were already on disk

    def put_many(self, blobs: list[bytes], hints: list[str | None]) -> list[str]:
        if not blobs:
            return []
        with ThreadPoolExecutor(max_workers=self.threads) as pool:  # hashlib releases the GIL
            results = list(pool.map(self._put, blobs, hints))
        self.written += sum(new for _, new in results)
        self.reused += sum(not new for _, new in results)
        return [path for path, _ in results]

    def _put(self, blob: bytes, hint: str | None) -> tuple[str, bool]:
        digest = hashlib.sha256(blob).hexdigest()
        path = self.root / digest[:2] / (digest + _extension(blob, hint))
        if path.exists():
            return str(path), False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(blob)}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(blob)
        os.replace(tmp, path)
        return str(path), True


def _extension(blob: bytes, hint: str | None) -> str:
    for magic, ext in _MAGIC:
        if blob.startswith(magic):
            return ext
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return ".webp"
    if blob[4:8] == b"ftyp":
        return ".mp4"
    ext = os.path.splitext(hint or "")[1].lower()
    return ext if ext in _KNOWN_EXT else ".bin"


def _flat_paths(values: pa.Array, store: MediaStore | None, base: str) -> pa.Array:
    """A flat array of media entries (string, binary or {'bytes', 'path'} struct) -> path strings."""
    typ = values.type
    if pa.types.is_struct(typ):
        has_bytes = typ.get_field_index("bytes") >= 0
        has_path = typ.get_field_index("path") >= 0
        blobs = pc.struct_field(values, "bytes") if has_bytes else pa.nulls(len(values), pa.binary())
        hints = pc.struct_field(values, "path").cast(pa.string()) if has_path else pa.nulls(len(values), pa.string())
    elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        blobs, hints = values, pa.nulls(len(values), pa.string())
    else:
        return _absolute(values.cast(pa.string()), base)
    has_blob = pc.is_valid(blobs).to_numpy(zero_copy_only=False)
    if not has_blob.any():
        return _absolute(hints, base)
    if store is None:
        raise GdoError("embedded media bytes need an output media folder (ingest --out / media_dir)")
    paths = np.array(_absolute(hints, base).to_pylist(), dtype=object)
    idx = np.flatnonzero(has_blob)
    # equal blobs in a batch are hashed and written once: Arrow finds them (C++ hashing)
    enc = pc.dictionary_encode(blobs.take(pa.array(idx)))
    codes = enc.indices.to_numpy()
    _, first = np.unique(codes, return_index=True)
    stored = store.put_many(enc.dictionary.to_pylist(), list(paths[idx[first]]))
    paths[idx] = np.array(stored, dtype=object)[codes]
    return pa.array(paths.tolist(), pa.string())


def _absolute(paths: pa.Array, base: str) -> pa.Array:
    """Relative paths -> ``base/path``; absolute paths and URLs stay as they are."""
    if len(paths) == 0 or not base:
        return paths
    filled = pc.fill_null(paths, "")
    keep = pc.or_(pc.or_(pc.starts_with(filled, "/"), pc.match_substring(filled, "://")),
                  pc.equal(filled, ""))
    joined = pc.binary_join_element_wise(base, filled, "/")
    return pc.if_else(pc.or_(keep, pc.is_null(paths)), paths, joined)


def normalize_media(table: pa.Table, store: MediaStore | None, base: str) -> pa.Table:
    """Replace media columns (any spelling / type) by ``images`` and ``videos`` as list<string>."""
    out = {name: table.column(name) for name in table.column_names if name not in MEDIA_COLUMNS}
    for target in ("images", "videos"):
        lists = []
        for name, mapped in MEDIA_COLUMNS.items():
            if mapped != target or name not in table.column_names:
                continue
            col = table.column(name).combine_chunks()
            if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
                flat = _flat_paths(pc.list_flatten(col), store, base)
                offsets = col.offsets if pa.types.is_list(col.type) else col.offsets.cast(pa.int32())
                rebuilt = pa.ListArray.from_arrays(offsets, flat)
                lists.append(pc.if_else(pc.is_valid(col), rebuilt, pa.nulls(len(col), rebuilt.type)))
            else:
                flat = _flat_paths(col, store, base)
                offsets = pa.array(np.arange(len(flat) + 1, dtype=np.int32))
                rebuilt = pa.ListArray.from_arrays(offsets, pc.fill_null(flat, ""))
                lists.append(pc.if_else(pc.is_valid(flat), rebuilt, pa.nulls(len(flat), rebuilt.type)))
        if lists:
            merged = lists[0]
            for other in lists[1:]:
                longer = pc.greater(pc.fill_null(pc.list_value_length(other), 0),
                                    pc.fill_null(pc.list_value_length(merged), 0))
                merged = pc.if_else(longer, other, merged)
            out[target] = merged
    return pa.table(out)


def iter_hf_blocks(source: str, file: str, media_dir: str | os.PathLike | None, media_root: str | None = None,
                   store: MediaStore | None = None):
    """HF-style source -> ``RawBlock``s (``line`` = 1-based row over all its data files)."""
    from gdo_opt.ingest.read import _FIELDS, _TypeMismatch, arrow_to_block, rows_to_block

    src = resolve(source)
    # relative media paths: against --media-root, else the source's folder (URLs: the working folder)
    base = media_root or (os.getcwd() if is_url(source) else src.base)
    store = store or (MediaStore(media_dir) if media_dir is not None else None)
    start = 1
    wanted = list(_FIELDS) + [c for c in MEDIA_COLUMNS if c not in _FIELDS]
    for table in iter_tables(src, wanted):
        table = normalize_media(table, store, base)
        lines = np.arange(start, start + table.num_rows, dtype=np.int64)
        try:
            yield arrow_to_block(table, lines, n_bytes=table.nbytes)
        except _TypeMismatch:  # a badly typed row or column: check row by row, skipping bad rows (bad_field)
            yield rows_to_block(zip(lines.tolist(), table.to_pylist()), file, n_bytes=table.nbytes)
        start += table.num_rows

