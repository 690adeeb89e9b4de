"""Synthetic candidate pools and published-GDO-style metrics for tests and benchmarks.

Vectorized, so the same generator serves a 3k-row unit test and a 1M-row benchmark
(experiments/bench_select.py). The table follows the candidate schema (docs/CONTRACTS.md) with
skewed sources, several QA pairs per video and ~3% exact duplicates, so every constraint family
of a goal preset has something to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def make_candidates(n: int, seed: int = 0, video_share: float = 0.3) -> pd.DataFrame:
    """A candidate table with the contract's columns: skewed sources, several QA per video, duplicates."""
    rng = np.random.default_rng(seed)
    video = rng.random(n) < video_share
    idx = np.arange(n)
    n_vid = max(1, int(video.sum()) // 5)
    vid_num = rng.integers(0, n_vid, n)
    video_uid = np.where(video, np.char.add("v", vid_num.astype(str)), "").astype(object)
    img_src = np.array([f"img_src_{i}" for i in range(12)], dtype=object)
    vid_src = np.array([f"vid_src_{i}" for i in range(8)], dtype=object)
    zipf = lambda k: (1.0 / np.arange(1, k + 1) ** 1.1) / (1.0 / np.arange(1, k + 1) ** 1.1).sum()  # noqa: E731
    source = np.where(video, vid_src[rng.choice(8, n, p=zipf(8))], img_src[rng.choice(12, n, p=zipf(12))])
    group = np.char.partition(source.astype(str), "_src_")[:, 0].astype(object)
    group = np.char.add(group.astype(str), np.char.mod("%d", rng.integers(0, 3, n) % 3)).astype(object)
    temporal = np.where(video, rng.random(n) < 0.35, rng.random(n) < 0.05)
    mcq = rng.random(n) < 0.4
    dur = np.where(video, np.array(["short", "medium", "long"], dtype=object)[rng.integers(0, 3, n)], "image")
    qlen = np.array(["q_short", "q_mid", "q_long"], dtype=object)[rng.choice(3, n, p=[0.5, 0.35, 0.15])]
    alen = np.array(["a_short", "a_mid", "a_long"], dtype=object)[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    tcat = np.where(temporal, "temporal", "static").astype(object)
    form = np.where(mcq, "MCQ", "Open").astype(object)
    stratum = dur + "|" + tcat + "|" + form + "|" + qlen + "|" + alen
    prefix = np.where(video, "vv::", "ov::").astype(object)
    row = np.char.mod("r%08d", idx).astype(object)
    qa_uid = prefix + row + "::t0"
    dup = rng.random(n) < 0.03  # ~3% exact duplicates of another row's key
    key_src = np.where(dup, rng.integers(0, n, n), idx)
    dedup_key = np.char.mod("k%08d", key_src).astype(object)
    import pyarrow as pa

    img_paths = pa.array(np.char.mod("img/%d.jpg", idx).astype(object))
    frame_paths = pa.array(np.char.add(np.char.add("frames/", video_uid.astype(str)), "/f000.jpg").astype(object))
    # images: one path; videos: 4 frame paths (enough for the export format, cheap at 1M rows)
    offsets_img = np.arange(n + 1, dtype=np.int32)
    single = pa.ListArray.from_arrays(pa.array(offsets_img), img_paths)
    quad_vals = pa.array(np.repeat(np.asarray(frame_paths.to_numpy(zero_copy_only=False)), 4))
    quad = pa.ListArray.from_arrays(pa.array(np.arange(0, 4 * n + 1, 4, dtype=np.int32)), quad_vals)
    media = np.where(video, pd.Series(quad.to_pandas()).to_numpy(), pd.Series(single.to_pandas()).to_numpy())
    question = np.char.add("What happens in item ", idx.astype(str)).astype(object) + np.where(temporal, " after the start?", "?")
    answer = np.char.add("Answer ", (idx % 997).astype(str)).astype(object)
    return pd.DataFrame({
        "qa_uid": qa_uid, "row_id": row, "turn": np.zeros(n, dtype=np.int32), "video_uid": video_uid,
        "bucket": np.where(video, "short_video", "image_qa").astype(object), "question": question,
        "answer": answer, "media": media, "media_kind": np.where(video, "frames", "image").astype(object),
        "n_frames": np.where(video, 32, 1).astype(np.int32), "source": source, "source_group": group,
        "duration_bucket": dur, "temporal_category": tcat, "question_form": form, "q_len_bucket": qlen,
        "a_len_bucket": alen, "stratum": stratum, "dedup_key": dedup_key, "dedup_key_q": dedup_key,
        "file": np.where(video, "video.jsonl", "onevision.jsonl").astype(object), "line": idx.astype(np.int64),
    })


def make_gdo_metrics(frame: pd.DataFrame, seed: int = 0, missing: float = 0.01) -> pd.DataFrame:
    """Published-GDO-style merged metrics: loss_video, loss_blind, frame_diversity, vds, quality_score."""
    rng = np.random.default_rng(seed + 1)
    n = len(frame)
    video = (frame["bucket"] == "short_video").to_numpy()
    loss_video = rng.gamma(2.0, 0.6, n)
    loss_blind = loss_video + rng.normal(np.where(video, 0.3, 0.1), 0.4)
    keep = rng.random(n) >= missing  # a few candidates without metrics (as in real merges)
    return pd.DataFrame({
        "qa_uid": frame["qa_uid"].to_numpy()[keep],
        "loss_video": loss_video[keep],
        "loss_blind": loss_blind[keep],
        "frame_diversity": np.where(video, rng.beta(2, 3, n), np.nan)[keep],
        "vds": (loss_blind - loss_video)[keep],
        "quality_score": rng.beta(5, 2, n)[keep],
    })


def write_jsonl_fast(frame: pd.DataFrame, path: Path) -> None:
    """JSONL via pandas (NaN -> null), the format the published code writes."""
    frame.to_json(path, orient="records", lines=True, double_precision=10)
