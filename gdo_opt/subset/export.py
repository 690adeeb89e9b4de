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

from gdo_opt.atomic import atomic_open
from gdo_opt.errors import GdoError, ParameterError

FRAMES_AS = ("video", "images")


def _json_strings(values) -> np.ndarray:
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    return np.array([dumps(str(v)) for v in values], dtype=object)


def _json_numbers(values: np.ndarray) -> np.ndarray:
    """6-significant-digit JSON numbers; NaN / inf become null (JSON has no NaN)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.array(["null"] * values.size, dtype=object)
    ok = np.isfinite(values)
    if ok.any():
        text = np.char.mod("%.6g", values[ok]).astype(object)
        out[ok] = text
    return out


def _media_lists(media) -> list[list[str]]:
    return [[str(m) for m in (item if item is not None else [])] for item in media]


def sft_lines(frame: pd.DataFrame, rho: np.ndarray, descriptors: dict[str, np.ndarray],
              frames_as: str = "images") -> np.ndarray:
    """One JSON line (without newline) per row of ``frame``, in ``frame``'s order."""
    if frames_as not in FRAMES_AS:
        raise ParameterError("frames_as", f"expected one of {', '.join(FRAMES_AS)}", frames_as)
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=object)
    media = _media_lists(frame["media"].to_numpy())
    kind = frame["media_kind"].astype(str).to_numpy()
    counts = np.fromiter((len(m) for m in media), dtype=np.int64, count=n)
    as_video = (kind == "video") | ((kind == "frames") & (frames_as == "video"))
    bad = (counts == 0) & (kind != "text")
    if bad.any():
        first = frame["qa_uid"].iloc[int(np.flatnonzero(bad)[0])]
        raise GdoError(f"candidates: qa_uid = {first!r}: no media paths to export")
    # Tags: <image> x len(images) for images; one <video> per video (a frames list is one video).
    n_video_tags = np.where(kind == "video", counts, 1)
    tags = np.where(as_video, np.char.multiply("<video>", n_video_tags).astype(object),
                    np.char.multiply("<image>", counts).astype(object))
    if frames_as == "images":  # the published builder's user turn: "<image>" x n, newline, question
        tags = np.where(counts > 0, tags + "\n", tags)
    user = _json_strings(tags + frame["question"].astype(str).to_numpy(dtype=object))
    assistant = _json_strings(frame["answer"].astype(str).to_numpy())
    media_json = np.array([json.dumps(m, ensure_ascii=False, separators=(",", ":")) for m in media], dtype=object)
    frames_video = (kind == "frames") & as_video
    media_json[frames_video] = "[" + media_json[frames_video] + "]"  # one video = the frame list
    media_key = np.where(as_video, '"videos":', '"images":').astype(object)

    meta = '{"descriptors":{'
    parts = []
    for name in sorted(descriptors):
        parts.append(f'"{name}":' + _json_numbers(descriptors[name]))
    if parts:
        body = parts[0]
        for p in parts[1:]:
            body = body + "," + p
        meta = meta + body
    meta = (meta + '},"rho":' + _json_numbers(rho)
            + ',"source":' + _json_strings(frame["source"].to_numpy())
            + ',"stratum":' + _json_strings(frame["stratum"].to_numpy()) + "}")
    line = ('{"messages":[{"role":"user","content":' + user
            + '},{"role":"assistant","content":' + assistant + "}],"
            + media_key + media_json
            + ',"qa_uid":' + _json_strings(frame["qa_uid"].to_numpy())
            + ',"video_uid":' + _json_strings(frame["video_uid"].to_numpy())
            + ',"meta":' + meta + "}")
    return np.asarray(line, dtype=object)


def write_sft(path: str | Path, frame: pd.DataFrame, indices: np.ndarray, rho: np.ndarray,
              descriptors: dict[str, np.ndarray], frames_as: str = "images") -> int:
    """Write the rows ``indices`` of ``frame`` atomically, sorted by qa_uid; returns the row count."""
    indices = np.asarray(indices, dtype=np.int64)
    uids = frame["qa_uid"].to_numpy()[indices].astype(str)
    order = indices[np.argsort(uids, kind="stable")]
    sub = frame.iloc[order]
    lines = sft_lines(sub, rho[order], {k: v[order] for k, v in descriptors.items()}, frames_as)
    with atomic_open(path, "w") as handle:
        for start in range(0, lines.size, 65536):
            chunk = lines[start:start + 65536]
            if chunk.size:
                handle.write("\n".join(chunk.tolist()))
                handle.write("\n")
    return int(lines.size)


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
