"""Streaming readers: JSONL / Parquet pool files -> normalized raw blocks (rows + flat messages).

The fast path hands each ~8 MB block of lines to ``pyarrow.json.read_json`` (C++, multi-threaded)
with an explicit schema, so only the fields we need are materialized. A block that Arrow rejects
(a malformed line, non-UTF-8 bytes, a field whose type varies between rows) is re-read line by line
with ``json.loads``: that is where bad lines get their ``file:line``; the block is then still
parsed. Both paths yield the same ``RawBlock`` so everything downstream is one vectorized code path.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

# Bytes of JSONL per block. Each worker's resident set grows with its block (Arrow parse, text passes);
# on 200k LLaVA-shaped pairs with 2 workers, 2 MB blocks peaked at ~330 MB for the whole process tree
# against ~540 MB with 8 MB blocks, at the same speed (experiments/vs_reference.py measures the peak).
BLOCK_BYTES = 2 << 20
STR_LIST = pa.list_(pa.string())
_MSG = pa.struct([("role", pa.string()), ("content", pa.string()), ("from", pa.string()), ("value", pa.string())])
_FIELDS = {
    "id": pa.string(), "video_id": pa.string(), "data_source": pa.string(), "duration": pa.float64(),
    "images": STR_LIST, "video": pa.string(), "videos": STR_LIST,
    "messages": pa.list_(_MSG), "conversations": pa.list_(_MSG),
}
ROW_SCHEMA = pa.schema([
    ("line", pa.int64()), ("id", pa.string()), ("video_id", pa.string()), ("data_source", pa.string()),
    ("duration", pa.float64()), ("images", STR_LIST), ("videos", STR_LIST),
])
MSG_SCHEMA = pa.schema([("row", pa.int64()), ("role", pa.string()), ("text", pa.string())])
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 13, 32]] = True


@dataclass
class SkipLog:
    """Skipped input counted by reason, with the first few ``file:line: detail`` examples."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    keep: int = 5

    def add(self, reason: str, file: str, lines, detail: str | list[str] = "") -> None:
        lines = np.asarray(lines, dtype=np.int64).ravel()
        if lines.size == 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + int(lines.size)
        ex = self.examples.setdefault(reason, [])
        for i, line in enumerate(lines[: max(0, self.keep - len(ex))]):
            d = detail[i] if isinstance(detail, list) else detail
            ex.append(f"{file}:{int(line)}: {reason}" + (f" ({d})" if d else ""))

    def note(self, reason: str, count: int, examples: list[str]) -> None:
        """Add ``count`` skips with ready-made example strings."""
        if count <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + int(count)
        ex = self.examples.setdefault(reason, [])
        ex.extend(examples[: max(0, self.keep - len(ex))])

    def merge(self, other: SkipLog) -> None:
        for reason, n in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n
            ex = self.examples.setdefault(reason, [])
            ex.extend(other.examples.get(reason, [])[: max(0, self.keep - len(ex))])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        return ", ".join(f"{r} {n}" for r, n in sorted(self.counts.items()))


@dataclass
class RawBlock:
    """One block of parsed rows: row fields (``ROW_SCHEMA``) and their messages (``MSG_SCHEMA``)."""

    rows: pa.Table
    msgs: pa.Table
    skips: SkipLog
    n_bytes: int = 0


def _col(table: pa.Table, name: str, typ: pa.DataType) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, typ)
    col = table.column(name).combine_chunks()
    if pa.types.is_list(typ) and pa.types.is_string(col.type):  # a single path instead of a list
        return _one_elem_lists(col)
    try:
        return col.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise _TypeMismatch(f"column {name!r} has type {col.type}, expected {typ}") from error


class _TypeMismatch(Exception):
    pass


def _one_elem_lists(values: pa.Array) -> pa.Array:
    """String column -> list<string> column ([v] where v is set, null where it is null)."""
    values = values.cast(pa.string())
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pc.fill_null(values, ""))
    return pc.if_else(pc.is_valid(values), lists, pa.nulls(len(values), STR_LIST))


def _struct_field(flat: pa.Array, name: str) -> pa.Array:
    typ = flat.type
    if pa.types.is_struct(typ) and typ.get_field_index(name) >= 0:
        return pc.struct_field(flat, name).cast(pa.string())
    return pa.nulls(len(flat), pa.string())


def _null_elements(*columns: pa.Array) -> bool:
    """A media list with a null element (``[null, "a.jpg"]``) is a bad row: the slow path names it."""
    return any(pc.list_flatten(c).null_count for c in columns if len(c))


def arrow_to_block(table: pa.Table, lines: np.ndarray, skips: SkipLog | None = None, n_bytes: int = 0) -> RawBlock:
    """Normalize a parsed Arrow table (any spelling) into a ``RawBlock``; fully vectorized."""
    videos = _col(table, "videos", STR_LIST)
    video = _col(table, "video", STR_LIST)  # LLaVA-Video's single path becomes a one-element list
    if _null_elements(videos, video, _col(table, "images", STR_LIST)):
        raise _TypeMismatch("a media list holds a null element")
    videos = pc.if_else(pc.greater(pc.fill_null(pc.list_value_length(videos), 0), 0), videos, video)
    ident = _col(table, "id", pa.string())
    rows = pa.table(
        [pa.array(lines, pa.int64()), ident, _col(table, "video_id", pa.string()),
         _col(table, "data_source", pa.string()), _col(table, "duration", pa.float64()),
         _col(table, "images", STR_LIST), videos],
        schema=ROW_SCHEMA,
    )
    cands = []
    for name in ("messages", "conversations"):
        if name in table.column_names:
            col = table.column(name).combine_chunks()
            if not pa.types.is_list(col.type) and not pa.types.is_large_list(col.type):
                raise _TypeMismatch(f"column {name!r} has type {col.type}, expected a list of messages")
            cands.append(col)
    msgs = cands[0] if cands else None
    if len(cands) == 2:
        a, b = cands
        msgs = pc.coalesce(a, b) if a.type == b.type else _coalesce_lists(a, b)
    if msgs is None:
        msg_table = MSG_SCHEMA.empty_table()
    else:
        flat = pc.list_flatten(msgs)
        parent = pc.list_parent_indices(msgs)
        role = pc.coalesce(_struct_field(flat, "role"), _struct_field(flat, "from"))
        text = pc.coalesce(_struct_field(flat, "content"), _struct_field(flat, "value"))
        msg_table = pa.table([parent.cast(pa.int64()), role, text], schema=MSG_SCHEMA)
    return RawBlock(rows, msg_table, skips or SkipLog(), n_bytes)


def _coalesce_lists(a: pa.Array, b: pa.Array) -> pa.Array:
    """Coalesce two message-list columns whose struct types differ (Parquet with both spellings)."""
    a_len = pc.fill_null(pc.list_value_length(a), 0)
    use_a = pc.greater(a_len, 0).to_numpy(zero_copy_only=False)
    rows = [x if ua else y for x, y, ua in zip(a.to_pylist(), b.to_pylist(), use_a)]
    return pa.array(rows)


# ---------------------------------------------------------------- JSONL, fast and fallback paths
def _schema(int_fields: frozenset[str]) -> pa.Schema:
    return pa.schema([(k, pa.int64() if k in int_fields else t) for k, t in _FIELDS.items()])


def _nonblank_lines(buf: bytes, first_line: int) -> np.ndarray:
    """1-based line numbers of the non-blank lines of ``buf`` (Arrow skips blank lines).

    Only lines that are empty or start with whitespace (rare in JSONL) are inspected one by one.
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [arr.size]))
    head = arr[np.minimum(starts, max(arr.size - 1, 0))] if arr.size else np.zeros(len(starts), np.uint8)
    suspect = np.flatnonzero((ends <= starts) | _WS[head])
    nonblank = np.ones(len(starts), dtype=bool)
    for k in suspect:
        nonblank[k] = bool(buf[starts[k] : ends[k]].strip())
    return first_line + np.flatnonzero(nonblank)


def _arrow_parse(buf: bytes, use_threads: bool = True) -> pa.Table | None:
    """Parse with Arrow; retry once with integer ids; ``None`` when the block needs the slow path."""
    int_fields: frozenset[str] = frozenset()
    for _ in range(3):
        opts = pj.ParseOptions(explicit_schema=_schema(int_fields), unexpected_field_behavior="ignore")
        try:
            return pj.read_json(io.BytesIO(buf), parse_options=opts,
                                read_options=pj.ReadOptions(block_size=1 << 22, use_threads=use_threads))
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            msg = str(error)
            bad = {k for k in ("id", "video_id") if f"Column(/{k})" in msg and "number" in msg}
            if not bad or bad <= int_fields:
                return None
            int_fields = int_fields | bad
    return None


def _text(value) -> str | None:
    """Message content as text: strings as-is, OpenAI-style part lists joined by their text parts."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for p in value:
            if isinstance(p, dict):
                if p.get("type") in ("image", "video"):
                    parts.append(f"<{p['type']}>")
                elif "text" in p:
                    parts.append(str(p["text"]))
            elif isinstance(p, str):
                parts.append(p)
        return "\n".join(parts)
    return str(value)


class _BadField(Exception):
    """A row whose field has the wrong type: skipped and counted as ``bad_field``."""


def _paths(value, name: str) -> list[str] | None:
    """Media paths: a string, or a list of strings / ``{"path": str}`` objects; anything else is bad."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out = []
        for k, v in enumerate(value):
            if isinstance(v, dict) and isinstance(v.get("path"), str):
                v = v["path"]
            if not isinstance(v, str):
                raise _BadField(f"{name}[{k}] is {_kind(v)}, expected a path string")
            out.append(v)
        return out
    raise _BadField(f"{name} is {_kind(value)}, expected a path or a list of paths")


def _kind(value) -> str:
    return "null" if value is None else f"a JSON {type(value).__name__}".replace("dict", "object").replace(
        "str", "string").replace("int", "number").replace("float", "number").replace("bool", "boolean")


def _ident(obj: dict, key: str) -> str | None:
    v = obj.get(key)
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise _BadField(f"{key} is {_kind(v)}, expected a string or an integer")


def _row_fields(obj: dict) -> tuple[dict, list[tuple[str | None, str | None]]]:
    """One JSON object -> row fields + (role, text) messages; raises _BadField on a wrong type."""
    fields = {k: _ident(obj, k) for k in ("id", "video_id")}
    src = obj.get("data_source")
    if src is not None and not isinstance(src, str):
        raise _BadField(f"data_source is {_kind(src)}, expected a string")
    fields["data_source"] = src
    dur = obj.get("duration")
    if dur is not None and (isinstance(dur, bool) or not isinstance(dur, (int, float))):
        raise _BadField(f"duration is {_kind(dur)}, expected a number")
    fields["duration"] = None if dur is None else float(dur)
    fields["images"] = _paths(obj.get("images"), "images")
    vids = _paths(obj.get("videos"), "videos")
    fields["videos"] = vids if vids else _paths(obj.get("video"), "video")
    name = "messages" if obj.get("messages") else "conversations"
    msgs = obj.get(name) or []
    if not isinstance(msgs, list):
        raise _BadField(f"{name} is {_kind(msgs)}, expected a list of messages")
    out = []
    for k, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise _BadField(f"{name}[{k}] is {_kind(m)}, expected an object")
        role = m.get("role", m.get("from"))
        if role is not None and not isinstance(role, str):
            raise _BadField(f"{name}[{k}].role is {_kind(role)}, expected a string")
        content = m.get("content", m.get("value"))
        if content is not None and not isinstance(content, (str, list)):
            raise _BadField(f"{name}[{k}].content is {_kind(content)}, expected text")
        out.append((role, _text(content)))
    return fields, out


def rows_to_block(objs, file: str, skips: SkipLog | None = None, n_bytes: int = 0) -> RawBlock:
    """(line, object) pairs -> RawBlock, each row type-checked (bad rows counted as ``bad_field``)."""
    skips = skips or SkipLog()
    cols: dict[str, list] = {k: [] for k in ROW_SCHEMA.names}
    m_row: list[int] = []
    m_role: list[str | None] = []
    m_text: list[str | None] = []
    for line, obj in objs:
        try:
            fields, msgs = _row_fields(obj)
        except _BadField as error:
            skips.add("bad_field", file, [line], str(error))
            continue
        r = len(cols["line"])
        cols["line"].append(line)
        for k, v in fields.items():
            cols[k].append(v)
        for role, text in msgs:
            m_row.append(r)
            m_role.append(role)
            m_text.append(text)
    rows = pa.table({k: pa.array(v, ROW_SCHEMA.field(k).type) for k, v in cols.items()}, schema=ROW_SCHEMA)
    msgs_t = pa.table([pa.array(m_row, pa.int64()), pa.array(m_role, pa.string()), pa.array(m_text, pa.string())],
                      schema=MSG_SCHEMA)
    return RawBlock(rows, msgs_t, skips, n_bytes)


def _python_block(buf: bytes, first_line: int, file: str) -> RawBlock:
    """Line-by-line fallback: finds malformed / non-UTF-8 / badly typed lines (file:line)."""
    skips = SkipLog()

    def objects():
        for i, raw in enumerate(buf.split(b"\n")):
            line = first_line + i
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                skips.add("non_utf8", file, [line], f"byte {error.start}")
                continue
            try:
                obj = json.loads(text)
            except ValueError as error:
                skips.add("malformed_json", file, [line], str(error).split(":")[0])
                continue
            if not isinstance(obj, dict):
                skips.add("malformed_json", file, [line], f"a JSON {type(obj).__name__}, not an object")
                continue
            yield line, obj

    return rows_to_block(objects(), file, skips, len(buf))


def parse_jsonl_block(buf: bytes, first_line: int, file: str, use_threads: bool = True) -> RawBlock:
    """Fast Arrow parse of one block of whole lines, falling back to the per-line parser.

    ``use_threads=False`` when blocks already run in parallel (nested pools oversubscribe the cores).
    """
    try:  # Arrow does not validate UTF-8 inside strings; a bad byte would fail later, mid-pipeline
        buf.decode("utf-8")
    except UnicodeDecodeError:
        return _python_block(buf, first_line, file)
    table = _arrow_parse(buf, use_threads)
    if table is not None:
        lines = _nonblank_lines(buf, first_line)
        if len(lines) == table.num_rows:
            try:
                return arrow_to_block(table, lines, n_bytes=len(buf))
            except _TypeMismatch:
                pass
    return _python_block(buf, first_line, file)


def iter_jsonl_blocks(path: Path, block_bytes: int | None = None) -> Iterator[tuple[bytes, int]]:
    """Yield (bytes of whole lines, 1-based number of their first line); streams the file (the
    blocks of ``iter_jsonl_views``, each copied out of the reused buffer once)."""
    for view, line, _ in iter_jsonl_views(path, block_bytes):
        yield bytes(view), line


def iter_jsonl_views(path: Path, block_bytes: int | None = None) -> Iterator[tuple[memoryview, int, int]]:
    """(view of whole lines, 1-based number of their first line, byte offset), read into one reused
    buffer, so **a view is valid only until the next item**: the parent's scans (block boundaries
    for the workers, picking exported lines) allocate nothing per block; with glibc's mmap threshold
    at 1 MB (``gdo_opt.memory``) every fresh 2 MB block would be a new zeroed mapping. A block is cut
    at its last newline and the next read starts after it; a line longer than the buffer grows it."""
    block_bytes = block_bytes or BLOCK_BYTES
    buf = bytearray(block_bytes)
    line, offset = 1, 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            handle.seek(offset)
            n = 0
            while n < len(buf):  # fill the buffer (a read may return less than asked)
                got = handle.readinto(memoryview(buf)[n:])
                if not got:
                    break
                n += got
            if n == 0:
                return
            cut = buf.rfind(b"\n", 0, n)
            if cut < 0:
                if n == len(buf):  # one line longer than the buffer: grow it and read again
                    buf = bytearray(2 * len(buf))
                    continue
                if bytes(buf[:n]).strip():  # the file's unterminated last line
                    yield memoryview(buf)[:n], line, offset
                return
            yield memoryview(buf)[: cut + 1], line, offset
            line += buf.count(b"\n", 0, cut + 1)
            offset += cut + 1
