"""The published builder's text rules (rujiewu/GDO ``gdo/build_pair.py``) on whole Arrow columns.

Whitespace normalization, media-placeholder stripping, the source group, the token counts behind
the length buckets and the QA-naturalness term, the MCQ / temporal cues and a 128-bit identity of
the normalized (question, answer) pair. A lean ingest computes these per block in its workers
(``text_features``), so the pool's text never has to be held in memory; ``gdo_opt.goal.published``
builds the strata, ρ and K from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_MEDIA = r"<image>|<video>|<audio>"
_MCQ = r"(?i)(\bchoices?\b)|(\nA\.)|(\nA\))"
_TEMPORAL = r"(?i)\b(before|after|then|while|during|first|next|finally|sequence|later|earlier|transition|happen)\b"
NORMALIZE_ROWS = 1 << 15


def _slices(text):
    """A text column as row slices of at most NORMALIZE_ROWS (no copy of the whole column)."""
    arr = pc.fill_null(pa.array(np.asarray(text, dtype=object), pa.string()) if not isinstance(
        text, (pa.Array, pa.ChunkedArray)) else text, "")
    for chunk in (arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]):
        for a in range(0, len(chunk), NORMALIZE_ROWS):
            yield chunk.slice(a, NORMALIZE_ROWS)


def _joined(pieces: list, like: pa.DataType = pa.string()) -> pa.Array:
    pieces = [p for p in pieces if len(p)]
    return pa.concat_arrays(pieces) if pieces else pa.array([], like)


def _normalize(arr: pa.Array) -> pa.Array:
    return pc.utf8_trim(pc.binary_join(pc.utf8_split_whitespace(arr), " "), " ")


def normalize_text(text) -> pa.Array:
    """The builder's ``" ".join(str(x).strip().split())`` for a whole column (Unicode whitespace runs
    -> one space; Arrow's split keeps one empty piece per leading / trailing run, trimmed after).
    Runs in row slices: the split holds one string per word (~3x the text), so one pass over a
    1M-row column would need ~1 GB for a moment; slices keep that to a few MB."""
    return _joined([_normalize(piece) for piece in _slices(text)])


def _strip_media_slice(piece: pa.Array) -> pa.Array:
    arr = _normalize(piece)
    tagged = pc.match_substring_regex(arr, _MEDIA)
    if pc.any(tagged).as_py():
        fixed = _normalize(pc.replace_substring_regex(arr.filter(tagged), _MEDIA, " "))
        arr = pc.replace_with_mask(arr, tagged, fixed)
    return arr


def strip_media(text) -> pa.Array:
    """``strip_media_tokens``: media placeholders become spaces, then whitespace is normalized
    (the regex runs only on the rows that still hold a placeholder; in row slices, as above)."""
    return _joined([_strip_media_slice(piece) for piece in _slices(text)])


def source_group(raw: str) -> str:
    """Text before "(" or the first four "_" tokens (``0_30_s_academic_v0_1`` -> ``0_30_s_academic``)."""
    s = " ".join(str(raw).strip().split())
    if not s:
        return "unknown"
    if "(" in s:
        return s.split("(", 1)[0].strip() or "unknown"
    parts = s.split("_")
    return "_".join(parts[:4]) if len(parts) >= 4 else s


_WORD_BYTE = np.zeros(256, dtype=bool)  # WORD_RE on lower-cased text: ASCII letters, digits, "_"
_WORD_BYTE[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] = True
_LOWER = np.arange(256, dtype=np.uint64)
_LOWER[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")] = list(b"abcdefghijklmnopqrstuvwxyz")


def _token_stats(text: pa.Array, distinct: bool = False, chunk_bytes: int = 1 << 20
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """``_token_stats_block`` over slices of about ``chunk_bytes`` of text: the per-byte work arrays
    (~40 bytes per text byte) stay a few hundred MB at most, whatever the pool size."""
    text = pc.fill_null(text, "")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    n = len(text)
    lengths = pc.binary_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = np.cumsum(lengths)
    cuts = [0]
    while cuts[-1] < n:  # each slice ends where the running byte count passes the next chunk_bytes
        base = ends[cuts[-1] - 1] if cuts[-1] else 0
        cuts.append(max(cuts[-1] + 1, int(np.searchsorted(ends, base + chunk_bytes, side="right"))))
    counts, distincts = [], []
    for a, b in zip(cuts[:-1], cuts[1:]):
        c, d = _token_stats_block(text.slice(a, b - a), distinct)
        counts.append(c)
        distincts.append(d)
    count = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    return count, (np.concatenate(distincts) if counts else np.zeros(0, np.int64)) if distinct else None


def _token_stats_block(text: pa.Array, distinct: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Token count per row (``WORD_RE`` runs) and, with ``distinct``, the distinct-token count, computed
    on the UTF-8 buffer with numpy: a token is identified by a 64-bit polynomial hash of its lower-cased
    bytes (prefix sums times inverse powers, wrapping arithmetic), so no per-token strings are built."""
    text = pc.fill_null(text, "")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.cast(pa.large_string()) if pa.types.is_string(text.type) else text
    n = len(text)
    offs = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset: text.offset + n + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[offs[0]: offs[-1]] if n else np.zeros(0, np.uint8)
    offs = offs - offs[0]
    word = _WORD_BYTE[data]
    row_start = np.zeros(data.size + 1, dtype=bool)
    row_start[offs[:-1]] = True
    prev = np.r_[False, word[:-1]] & ~row_start[:-1]
    starts = np.flatnonzero(word & ~prev)
    row_of = np.searchsorted(offs, starts, side="right") - 1
    count = np.bincount(row_of, minlength=n)
    if not distinct:
        return count, None
    nxt = np.r_[word[1:], False] & ~row_start[1:]
    ends = np.flatnonzero(word & ~nxt) + 1
    base = np.uint64(0x100000001B3)
    inv = np.uint64(pow(0x100000001B3, -1, 1 << 64))
    with np.errstate(over="ignore"):
        powers = _powers(base, data.size)  # base^(j+1)
        inv_powers = _powers(inv, data.size + 1)  # inv^(j+1)
        prefix = np.r_[np.uint64(0), np.cumsum(_LOWER[data] * powers, dtype=np.uint64)]
        token = (prefix[ends] - prefix[starts]) * inv_powers[starts]  # Σ b_j base^(j - start + 1)
        key = token ^ (row_of.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    first = ~pd.Series(key).duplicated().to_numpy()
    return count, np.bincount(row_of[first], minlength=n)


def _powers(base: np.uint64, n: int, block: int = 4096) -> np.ndarray:
    """base^(j+1) mod 2^64 for j < n as an outer product of two short cumulative products (one long
    ``np.cumprod`` over uint64 runs ~100 ns per element; this is a multiply per element)."""
    with np.errstate(over="ignore"):
        low = np.cumprod(np.full(block, base, dtype=np.uint64))  # base^1 .. base^block
        steps = max(1, -(-n // block))
        high = np.empty(steps, dtype=np.uint64)  # base^(block i)
        high[0] = 1
        if steps > 1:
            high[1:] = np.cumprod(np.full(steps - 1, low[-1], dtype=np.uint64))
        return (high[:, None] * low[None, :]).ravel()[:n]


TEXT_FEATURES = ("pub_q_tokens", "pub_a_tokens", "pub_a_distinct", "pub_mcq", "pub_temporal", "pub_text_h1",
                 "pub_text_h2")
_HASH_KEYS = ("gdo-opt-text-k1!", "gdo-opt-text-k2!")  # two SipHash keys: a 128-bit text identity


def text_features(question, answer) -> dict[str, np.ndarray]:
    """Everything the builder reads from a row's text, per row: token counts (question, answer),
    distinct answer tokens, the MCQ / temporal cues and a 128-bit identity of the normalized
    (question, answer) pair for exact-text dedup (two independent 64-bit SipHashes; a false match
    among 10M distinct texts has probability ~1e-25). A lean ingest computes these per block in its
    workers, so the pool's text never has to be held in memory."""
    from gdo_opt.ingest.text import mix_hashes

    q = strip_media(question)
    a = normalize_text(answer)
    out = {"pub_q_tokens": _token_stats(q)[0].astype(np.int32)}
    a_tokens, a_distinct = _token_stats(a, distinct=True)
    out["pub_a_tokens"], out["pub_a_distinct"] = a_tokens.astype(np.int32), a_distinct.astype(np.int32)
    out["pub_mcq"] = pc.match_substring_regex(q, _MCQ).to_numpy(zero_copy_only=False)
    out["pub_temporal"] = pc.match_substring_regex(q, _TEMPORAL).to_numpy(zero_copy_only=False)
    for name, key in zip(("pub_text_h1", "pub_text_h2"), _HASH_KEYS):
        parts = []
        for start in range(0, len(q), NORMALIZE_ROWS):  # Python strings for a slice at a time
            qs = q.slice(start, NORMALIZE_ROWS).to_numpy(zero_copy_only=False)
            as_ = a.slice(start, NORMALIZE_ROWS).to_numpy(zero_copy_only=False)
            parts.append(mix_hashes(pd.util.hash_array(qs, hash_key=key, categorize=False),
                                    pd.util.hash_array(as_, hash_key=key, categorize=False)))
        out[name] = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    return out
