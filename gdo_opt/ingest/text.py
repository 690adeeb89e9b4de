"""Vectorized text helpers of the ingest: tag stripping, normalization, fingerprints, length buckets,
source groups and media paths — whole-column pyarrow / numpy operations, no loop per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TAG_RE = r"<(?:image|video)>"
NORM_RE = r"[^\p{L}\p{N}]+"


def strip_tags(text: pa.Array) -> pa.Array:
    """Drop ``<image>`` / ``<video>`` placeholders and surrounding whitespace."""
    text = pc.fill_null(text, "")
    tagged = pc.match_substring(text, "<")  # tags are rare outside the first question: touch only those
    if pc.any(tagged).as_py():
        sub = pc.replace_substring(pc.replace_substring(text.filter(tagged), "<image>", ""), "<video>", "")
        text = pc.replace_with_mask(text, tagged, sub)
    return pc.utf8_trim_whitespace(text)


def normalize_regex(text: pa.Array) -> pa.Array:
    """Lower-case; runs of non letters/digits -> one space; trimmed (RE2, Unicode classes)."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(text), NORM_RE, " "))


_MAP = np.full(256, 32, dtype=np.uint8)  # ASCII letters -> lower case, digits kept, the rest -> space
_MAP[list(b"abcdefghijklmnopqrstuvwxyz0123456789")] = list(b"abcdefghijklmnopqrstuvwxyz0123456789")
_MAP[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")] = list(b"abcdefghijklmnopqrstuvwxyz")


def normalize(text: pa.Array) -> pa.Array:
    """Same result as ``normalize_regex``, computed on the raw UTF-8 buffer with numpy for ASCII
    strings (the bulk of real pools; a few passes over the bytes instead of a regex per string);
    non-ASCII strings go through the regex."""
    text = pc.fill_null(text, "").cast(pa.string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    n = len(text)
    if n == 0:
        return text
    offs = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset : text.offset + n + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[offs[0] : offs[-1]]
    offs = offs - offs[0]
    mapped = _MAP[data]
    word = mapped != 32
    total = data.size
    starts = np.zeros(total + 1, dtype=bool)
    starts[offs[:-1]] = True
    # keep word bytes, and one separator right before each word that follows non-word bytes in the
    # same string; trailing runs vanish, a leading run leaves one space (ltrim below)
    keep = word.copy()
    if total > 1:
        keep[:-1] |= word[1:] & ~starts[1:total] & ~word[:-1]
    out = mapped[keep]
    kept = np.zeros(total + 1, dtype=np.int32)
    np.cumsum(keep, out=kept[1:])
    new_offs = kept[offs]
    result = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(new_offs), pa.py_buffer(out)])
    result = pc.ascii_ltrim_whitespace(result)
    non_ascii = pc.invert(pc.string_is_ascii(text))
    if pc.any(non_ascii).as_py():  # (lower-casing is Unicode-aware there)
        result = pc.replace_with_mask(result, non_ascii, normalize_regex(text.filter(non_ascii)))
    return result


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def siphash(text: pa.Array | Sequence[str]) -> np.ndarray:
    """64-bit SipHash of each string (pandas' fixed key, so stable across runs and machines)."""
    values = text.to_numpy(zero_copy_only=False) if isinstance(text, pa.Array | pa.ChunkedArray) else text
    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


def hex_digests(h: np.ndarray) -> pa.Array:
    raw = h.astype(">u8").view(np.uint8).reshape(-1, 8)
    out = np.empty((len(h), 16), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    offsets = np.arange(0, 16 * len(h) + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(h), [None, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())])


def mix_hashes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Order-dependent combination of two 64-bit hashes (splitmix64 finalizer over a*K ^ b)."""
    z = a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ b.astype(np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fingerprints(norm_q: pa.Array | Sequence[str], norm_a: pa.Array | Sequence[str]) -> tuple[pa.Array, pa.Array]:
    """(question+answer, question) fingerprints of normalized texts, as 16 hex chars each."""
    hq = siphash(norm_q)
    return hex_digests(mix_hashes(hq, siphash(norm_a))), hex_digests(hq)


def word_counts(norm: pa.Array) -> np.ndarray:
    """Word count of normalized text (runs of letters/digits): spaces + 1, 0 when empty."""
    spaces = pc.count_substring(norm, " ").to_numpy()
    return np.where(pc.utf8_length(norm).to_numpy() > 0, spaces + 1, 0)


def bucket_labels(values: np.ndarray, edges: list[float], labels: list[str]) -> pa.Array:
    return pa.array(labels).take(pa.array(np.searchsorted(np.asarray(edges), values, side="left")))


def default_source_group(source: str) -> str:
    """Coarse family of a data_source: the part before the first '/', else before the first '_'."""
    s = source.strip().lower()
    if "/" in s:
        return s.split("/", 1)[0] or s
    return s.split("_", 1)[0] or s


def source_groups(source: pa.Array, mapping: dict[str, str] | None) -> pa.Array:
    enc = pc.dictionary_encode(source)
    groups = [(mapping or {}).get(s, default_source_group(s)) for s in enc.dictionary.to_pylist()]
    return pa.array(groups, pa.string()).take(enc.indices)


def constant(n: int, value: str) -> pa.Array:
    return pc.fill_null(pa.nulls(n, pa.string()), value)


def resolve_paths(paths: pa.Array, root: str) -> pa.Array:
    """Relative media paths -> ``root/path`` (strings only; files are not touched)."""
    if len(paths) == 0:
        return paths
    absolute = pc.or_(pc.starts_with(paths, "/"), pc.match_substring(paths, "://"))
    joined = pc.binary_join_element_wise(root, paths, "/")
    return pc.if_else(absolute, paths, joined) if pc.any(absolute).as_py() else joined
