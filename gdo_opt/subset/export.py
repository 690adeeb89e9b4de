"""SFT-ready export: ms-swift "messages" JSONL rows for a selection, byte-deterministic.

Format (ms-swift custom dataset, standard messages format): the user turn starts with one
``<image>`` tag per entry of ``images`` or one ``<video>`` tag per entry of ``videos``, then the
question; the assistant turn is the answer. Frame sequences go out as one ``<video>`` whose entry
is the list of frame paths (ms-swift's HF/Qwen video loaders accept "a list of image file names"
as a video), or with ``frames_as="images"`` (the default: the published builder's format) as one
``<image>`` per frame followed by a newline and the question, frames in ``images`` (resampled to
32 at ingest). ``qa_uid``,
``video_uid`` and ``meta`` (ρ, descriptor values, stratum, source) are kept for traceability;
ms-swift ignores extra keys. Rows are sorted by ``qa_uid``; floats are printed with 6
significant digits so equal inputs give equal bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from gdo_opt.atomic import atomic_open
from gdo_opt.errors import GdoError, ParameterError

FRAMES_AS = ("video", "images")


def _json_strings(values) -> np.ndarray:
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    return np.array([dumps(str(v)) for v in values], dtype=object)


_OTHER_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"  # escaped as \b, \f or \u00XX: left to Python's encoder
_NEEDS_ESCAPE = r'[\\"\x00-\x1f]'  # a backslash, a quote or any control character
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _json_quoted(values) -> pa.Array:
    """Each string as ``json.dumps(str(v), ensure_ascii=False)`` writes it, with Arrow kernels (the
    five common escapes as substring replacements; rows with another control character, and
    columns with missing values, through Python's encoder)."""
    import pyarrow.compute as pc

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = values
    elif isinstance(getattr(values, "dtype", None), pd.ArrowDtype):
        arr = pa.array(values.array)
    else:
        try:  # plain str objects convert; anything else (numbers, None) keeps str(v)
            arr = pa.array(np.asarray(values, dtype=object), pa.string(), from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = None
    if arr is not None and isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr is None or arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            plain = values.to_pylist()
        else:  # what the per-row path printed: str() of each value as numpy / pandas gives it
            plain = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values, dtype=object)
        return pa.array(_json_strings(plain), pa.string())
    # one regex pass finds the rows that need any escape (few: paths, ids and most text need none);
    # only those go through the replacements
    special = pc.match_substring_regex(arr, _NEEDS_ESCAPE)
    if not pc.any(special).as_py():
        return pc.binary_join_element_wise('"', arr, '"', "")
    fixed = arr.filter(special)
    for old, new in _ESCAPES:
        fixed = pc.replace_substring(fixed, old, new)
    out = pc.binary_join_element_wise('"', pc.replace_with_mask(arr, special, fixed), '"', "")
    rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    odd = rows[pc.match_substring_regex(arr.take(pa.array(rows)), _OTHER_CONTROL).to_numpy(zero_copy_only=False)]
    if odd.size:
        mask = np.zeros(len(arr), dtype=bool)
        mask[odd] = True
        out = pc.replace_with_mask(out, pa.array(mask), pa.array(_json_strings(arr.take(pa.array(odd)).to_pylist()),
                                                                 out.type))
    return out


def _json_numbers(values: np.ndarray) -> np.ndarray:
    """6-significant-digit JSON numbers; NaN / inf become null (JSON has no NaN)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.array(["null"] * values.size, dtype=object)
    ok = np.isfinite(values)
    if ok.any():
        out[ok] = list(map("%.6g".__mod__, values[ok].tolist()))  # 5x np.char.mod's speed, same text
    return out


def _media_json(media) -> tuple[pa.Array, np.ndarray]:
    """(JSON list text, path count) per row, as ``json.dumps(paths, ensure_ascii=False,
    separators=(",", ":"))`` writes them, built with Arrow kernels: at 1M pairs the exports hold
    millions of frame paths (quoted by ``_json_quoted``)."""
    import pyarrow.compute as pc

    if isinstance(getattr(media, "dtype", None), pd.ArrowDtype):
        arr = pa.array(media.array)
    else:
        arr = pa.array([[str(m) for m in (item if item is not None else [])] for item in media], pa.list_(pa.string()))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.fill_null(arr, pa.scalar([], arr.type))
    counts = pc.list_value_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    quoted = _json_quoted(pc.cast(pc.list_flatten(arr), pa.string()))
    offsets = np.concatenate(([0], np.cumsum(counts)))
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), quoted)
    text = pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
    return text, counts


def _text(series: pd.Series) -> pa.Array:
    """A text column as an Arrow string array, ``str(v)`` of each value as the per-row path printed
    it (Arrow buffers as they are when nothing is missing)."""
    import pyarrow.compute as pc

    if isinstance(series.dtype, pd.ArrowDtype) and not series.isna().any():
        arr = pa.array(series.array)
        return pc.cast(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr, pa.string())
    return pa.array(series.astype(str).to_numpy(dtype=object), pa.string())


def _repeated(tag: str, times: np.ndarray) -> np.ndarray:
    """``tag * times[i]`` per row, built once per distinct count (np.char.multiply is per row)."""
    counts, inverse = np.unique(times, return_inverse=True)
    return np.array([tag * int(c) for c in counts], dtype=object)[inverse.ravel()]


def sft_lines(frame: pd.DataFrame, rho: np.ndarray, descriptors: dict[str, np.ndarray],
              frames_as: str = "images", stratum: np.ndarray | None = None) -> np.ndarray:
    """One JSON line (without newline) per row of ``frame``, in ``frame``'s order."""
    return sft_text(frame, rho, descriptors, frames_as, stratum).to_numpy(zero_copy_only=False).astype(object)


def sft_encoded(frame: pd.DataFrame, rho: np.ndarray, descriptors: dict[str, np.ndarray],
                frames_as: str = "images", stratum: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """(bytes of every ``line + "\\n"``, each one's size) for the rows of ``frame``, without a Python
    string per row: the lines are one Arrow string array, whose data buffer already is those bytes."""
    import pyarrow.compute as pc

    text = pc.binary_join_element_wise(sft_text(frame, rho, descriptors, frames_as, stratum), "\n", "")
    wide = pa.types.is_large_string(text.type)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if wide else np.int32)[text.offset: text.offset + len(text) + 1]
    data = text.buffers()[2]
    return data[int(offsets[0]): int(offsets[-1])].to_pybytes(), np.diff(offsets).astype(np.int64)


def sft_text(frame: pd.DataFrame, rho: np.ndarray, descriptors: dict[str, np.ndarray],
             frames_as: str = "images", stratum: np.ndarray | None = None) -> pa.Array:
    """The lines of ``sft_lines`` as one Arrow string array, assembled column-wise by Arrow kernels."""
    import pyarrow.compute as pc

    if frames_as not in FRAMES_AS:
        raise ParameterError("frames_as", f"expected one of {', '.join(FRAMES_AS)}", frames_as)
    n = len(frame)
    if n == 0:
        return pa.array([], pa.string())
    media_json, counts = _media_json(frame["media"])
    kind = frame["media_kind"].astype(str).to_numpy()
    as_video = (kind == "video") | ((kind == "frames") & (frames_as == "video"))
    bad = (counts == 0) & (kind != "text")
    if bad.any():
        first = frame["qa_uid"].iloc[int(np.flatnonzero(bad)[0])]
        raise GdoError(f"candidates: qa_uid = {first!r}: no media paths to export")
    # Tags: <image> x len(images) for images; one <video> per video (a frames list is one video).
    n_video_tags = np.where(kind == "video", counts, 1)
    tags = np.where(as_video, _repeated("<video>", n_video_tags), _repeated("<image>", counts))
    if frames_as == "images":  # the published builder's user turn: "<image>" x n, newline, question
        tags = np.where(counts > 0, tags + "\n", tags)
    user = _json_quoted(pc.binary_join_element_wise(pa.array(tags, pa.string()), _text(frame["question"]), ""))
    assistant = _json_quoted(_text(frame["answer"]))
    frames_video = (kind == "frames") & as_video
    media_json = pc.if_else(pa.array(frames_video), pc.binary_join_element_wise("[", media_json, "]", ""), media_json)
    media_key = pa.array(np.where(as_video, '"videos":', '"images":'), pa.string())

    pieces = ['{"messages":[{"role":"user","content":', user, '},{"role":"assistant","content":', assistant,
              "}],", media_key, media_json, ',"qa_uid":', _json_quoted(frame["qa_uid"]),
              ',"video_uid":', _json_quoted(frame["video_uid"]), ',"meta":{"descriptors":{']
    for i, name in enumerate(sorted(descriptors)):
        pieces += [("," if i else "") + f'"{name}":', pa.array(_json_numbers(descriptors[name]), pa.string())]
    pieces += ['},"rho":', pa.array(_json_numbers(rho), pa.string()), ',"source":', _json_quoted(frame["source"]),
               ',"stratum":', _json_quoted(frame["stratum"] if stratum is None else stratum), "}}"]
    pieces = [pc.cast(p, pa.string()) if isinstance(p, (pa.Array, pa.ChunkedArray)) else p for p in pieces]
    return pc.binary_join_element_wise(*pieces, "")


def write_sft(path: str | Path, frame: pd.DataFrame, indices: np.ndarray, rho: np.ndarray,
              descriptors: dict[str, np.ndarray], frames_as: str = "images") -> int:
    """Write the rows ``indices`` of ``frame`` atomically, sorted by qa_uid; returns the row count."""
    return write_sft_sets({path: indices}, frame, rho, descriptors, frames_as)[Path(path)]


EXPORT_COLUMNS = ("qa_uid", "video_uid", "question", "answer", "media", "media_kind", "source", "stratum")
EXPORT_BATCH = 8192  # rows turned into JSON at a time: the export's memory does not grow with K


def write_sft_sets(outputs: dict, frame: pd.DataFrame, rho: np.ndarray, descriptors: dict[str, np.ndarray],
                   frames_as: str = "images", batches=None, stratum: np.ndarray | None = None,
                   encoded=None, arrival: np.ndarray | None = None) -> dict:
    """Write several subsets of ``frame`` (``{path: row indices}``) in ``write_sft``'s format, in a
    memory that does not grow with their size: each exported row is turned into its JSON line once,
    batch by batch, and spooled to a temporary file beside the outputs; each output is then copied
    from the spool in its own qa_uid order. ``batches`` yields ``(rows, frame of those rows)``; by
    default they are slices of ``frame``.
    ``encoded`` yields ready ``(rows, bytes of their lines, line sizes)`` instead (a lean frame's rows,
    built in worker processes: ``subset.export_lean``), in the order ``arrival`` (pool rows) when
    the caller knows it: when that already is every output's qa_uid order the lines are written
    straight through. Returns {path: row count}."""
    from gdo_opt.schema import text_column

    outputs = {Path(p): np.asarray(r, dtype=np.int64) for p, r in outputs.items()}
    union = np.unique(np.concatenate(list(outputs.values()))) if outputs else np.zeros(0, np.int64)
    if batches is None:
        batches = ((union[a:a + EXPORT_BATCH], frame.iloc[union[a:a + EXPORT_BATCH]])
                   for a in range(0, union.size, EXPORT_BATCH))
    if encoded is None:
        encoded = ((rows, *sft_encoded(sub, rho[rows], {k: v[rows] for k, v in descriptors.items()},
                                       frames_as, None if stratum is None else stratum[rows]))
                   for rows, sub in batches)
        arrival = union  # the default batches come in pool order
    uids = text_column(frame["qa_uid"])
    order = {}  # each output's rows in qa_uid order
    for path, rows in outputs.items():
        keys = uids.take(rows).to_numpy(zero_copy_only=False).astype(str) if rows.size else np.zeros(0, str)
        order[path] = rows[np.argsort(keys, kind="stable")]
    if arrival is not None and all(np.array_equal(arrival[np.isin(arrival, rows)], rows) for rows in order.values()):
        return _write_direct(order, encoded, arrival)
    return _write_spooled(order, encoded, union)


def _write_direct(order: dict, encoded, arrival: np.ndarray) -> dict:
    """Lines arrive in each output's own order (pools whose ids follow the file order): write them
    straight through, no spool (at K = 50k on 1M pairs that saves writing and re-reading ~1 GB)."""
    from contextlib import ExitStack

    seen = 0
    member = {path: np.isin(arrival, wanted) for path, wanted in order.items()}  # once, not per batch
    with ExitStack() as stack:
        handles = {path: stack.enter_context(atomic_open(path, "wb")) for path in order}
        for rows, data, sizes in encoded:
            if not np.array_equal(rows, arrival[seen:seen + rows.size]):
                raise GdoError("export: rows arrived out of the announced order (internal error)")
            ends = np.cumsum(sizes)
            view = memoryview(data)
            for path in order:
                take = np.flatnonzero(member[path][seen:seen + rows.size])
                if take.size == rows.size:
                    handles[path].write(data)
                elif take.size:  # consecutive taken lines are one contiguous slice
                    brk = np.flatnonzero(np.diff(take) != 1) + 1
                    first, last = take[np.r_[0, brk]], take[np.r_[brk - 1, take.size - 1]]
                    handles[path].writelines(view[a:b] for a, b in zip((ends[first] - sizes[first]).tolist(),
                                                                        ends[last].tolist()))
            seen += rows.size
        if seen != arrival.size:
            raise GdoError(f"export: {arrival.size - seen} selected rows could not be rebuilt")
    return {path: int(rows.size) for path, rows in order.items()}


def _write_spooled(order: dict, encoded, union: np.ndarray) -> dict:
    """Lines in any order: spool each once to a temporary file beside the outputs, then copy every
    output from it in its own order."""
    import os
    import tempfile

    start = np.full(union.size, -1, dtype=np.int64)
    length = np.zeros(union.size, dtype=np.int64)
    folder = next(iter(order)).parent if order else Path(".")
    with tempfile.TemporaryFile(dir=folder, prefix=".gdo-export-") as spool:
        offset = 0
        for rows, data, sizes in encoded:
            at = np.searchsorted(union, rows)
            start[at] = offset + np.cumsum(sizes) - sizes
            length[at] = sizes
            spool.write(data)
            offset += int(sizes.sum())
        if (start < 0).any():
            raise GdoError(f"export: {int((start < 0).sum())} selected rows could not be rebuilt")
        spool.flush()
        fd = spool.fileno()
        for path, rows in order.items():
            at = np.searchsorted(union, rows)
            with atomic_open(path, "wb") as handle:  # pread, not mmap: mapped pages would count as our memory
                handle.writelines(os.pread(fd, n, s) for s, n in zip(start[at].tolist(), length[at].tolist()))
    return {path: int(rows.size) for path, rows in order.items()}


def check_sft_row(row: dict) -> list[str]:
    """ms-swift format rules for one row; [] when fine (used by tests and `gdo-opt select --check`)."""
    problems = []
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["messages missing or empty"]
    roles = [m.get("role") for m in messages if m.get("role") != "system"]
    if roles[0] != "user" or roles[-1] != "assistant":
        problems.append(f"roles must start with user and end with assistant: {roles}")
    if any(a == b for a, b in zip(roles, roles[1:])):
        problems.append(f"roles must alternate user/assistant: {roles}")
    text = "".join(str(m.get("content", "")) for m in messages)
    for tag, key in (("<image>", "images"), ("<video>", "videos")):
        if text.count(tag) != len(row.get(key, []) or []):
            problems.append(f"{text.count(tag)} {tag} tags but {len(row.get(key, []) or [])} {key}")
    return problems
