"""One raw block -> candidate rows (one per user -> assistant turn), with whole-column operations.

Turn pairing, tag stripping, regex cues, fingerprints and frame resampling are numpy / pyarrow.compute
operations over the block, so there is no Python loop per candidate on the fast path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.ingest.read import RawBlock
from gdo_opt.ingest.schema import (
    A_LEN_EDGES,
    A_LEN_LABELS,
    ASSISTANT_ROLES,
    DUR_EDGES,
    DUR_LABELS,
    IMAGE_BUCKET,
    MCQ_RE,
    PREFIX,
    Q_LEN_EDGES,
    Q_LEN_LABELS,
    SYSTEM_ROLES,
    TEMPORAL_RE,
    USER_ROLES,
    VIDEO_BUCKET,
    IngestOptions,
)
from gdo_opt.ingest.text import (
    bucket_labels,
    constant,
    fingerprints,
    normalize,
    resolve_paths,
    source_groups,
    strip_tags,
    word_counts,
)


@dataclass
class _MediaPlan:
    """Row-level media choice: where each row's paths start in ``values`` and how many to take."""

    values: pa.Array
    start: np.ndarray
    src_len: np.ndarray
    count: np.ndarray
    resample: np.ndarray
    kind_code: np.ndarray  # 0 none, 1 image, 2 frames, 3 video


def _media_plan(block: RawBlock, kind: str, opts: IngestOptions) -> _MediaPlan:
    """First image (OneVision), all images (generic), frames (LLaVA-Video `images`, resampled to
    ``target_frames``), or the video path(s); ``pool`` rows prefer `videos` like ms-swift."""
    rows = block.rows
    imgs, vids = rows.column("images").combine_chunks(), rows.column("videos").combine_chunks()
    img_len = pc.fill_null(pc.list_value_length(imgs), 0).to_numpy().astype(np.int64)
    vid_len = pc.fill_null(pc.list_value_length(vids), 0).to_numpy().astype(np.int64)
    has_img, has_vid = img_len > 0, vid_len > 0
    if kind == "pool":
        use_vid, use_img = has_vid, has_img & ~has_vid
    else:
        use_img, use_vid = has_img, has_vid & ~has_img
    flat_img, flat_vid = pc.list_flatten(imgs), pc.list_flatten(vids)
    values = pa.concat_arrays([flat_img.cast(pa.string()), flat_vid.cast(pa.string())])
    start = np.where(use_img, np.cumsum(img_len) - img_len, len(flat_img) + np.cumsum(vid_len) - vid_len)
    src_len = np.where(use_img, img_len, np.where(use_vid, vid_len, 0))
    frames = use_img & (kind == "video")
    if kind == "onevision":
        count = np.where(use_img, 1, src_len)
    else:
        count = np.where(frames, np.minimum(src_len, opts.target_frames), src_len)
    kind_code = np.where(frames, 2, np.where(use_vid, 3, np.where(use_img, 1, 0)))
    return _MediaPlan(values, start, src_len, count, frames & (src_len > opts.target_frames), kind_code)


def _media_lists(plan: _MediaPlan, sel: np.ndarray, target: int, root: str) -> pa.Array:
    """Media lists for the rows ``sel`` (one per candidate): one gather, uniform ``round(linspace)``
    frame indices for long frame lists, then path resolution."""
    count = plan.count[sel]
    offsets = np.concatenate(([0], np.cumsum(count))).astype(np.int64)
    owner = np.repeat(np.arange(len(sel)), count)
    j = np.arange(offsets[-1]) - offsets[:-1][owner]
    row = sel[owner]
    step = (plan.src_len[row] - 1) / max(target - 1, 1)
    within = np.where(plan.resample[row], np.rint(j * step).astype(np.int64), j)
    values = resolve_paths(plan.values.take(pa.array(plan.start[row] + within)), root)
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


EXPORT_ONLY = ("qa_uid", "question", "answer", "media", "media_kind")
PAPER_SKIPS = ("source_group", "duration_bucket", "temporal_category", "question_form", "q_len_bucket",
               "a_len_bucket", "stratum", "dedup_key", "dedup_key_q")


def process_block(block: RawBlock, kind: str, file: str, opts: IngestOptions, export_only: bool = False,
                  paper_only: bool = False) -> pa.Table:
    """Raw rows + messages of one block -> candidate rows (one per user->assistant turn).

    Bad rows are counted into ``block.skips`` with their file:line and dropped. ``export_only``
    (re-reading exported rows, ``gdo_opt.ingest.reload``) builds just the ``EXPORT_ONLY`` columns,
    the same values, without the strata, cues and fingerprints; ``paper_only`` (a lean ingest for
    the paper goals) keeps every column but ``PAPER_SKIPS``.
    """
    rows, msgs, skips = block.rows, block.msgs, block.skips
    n = rows.num_rows
    lines = rows.column("line").to_numpy()
    root = opts.media_root or os.path.dirname(os.path.abspath(file))
    plan = _media_plan(block, kind, opts)
    has_media, is_frames = plan.kind_code > 0, plan.kind_code == 2
    media_kind = pa.array(["", "image", "frames", "video"]).take(pa.array(plan.kind_code))
    n_frames = np.where(plan.kind_code == 3, 0, plan.src_len).astype(np.int32)

    # -- turn pairing: drop system messages, then roles must go user, assistant, user, ...
    m_row = msgs.column("row").to_numpy()
    role = pc.utf8_lower(pc.utf8_trim_whitespace(pc.fill_null(msgs.column("role").combine_chunks(), "")))
    is_user = pc.is_in(role, value_set=pa.array(list(USER_ROLES))).to_numpy(zero_copy_only=False)
    is_asst = pc.is_in(role, value_set=pa.array(list(ASSISTANT_ROLES))).to_numpy(zero_copy_only=False)
    kept = np.flatnonzero(~pc.is_in(role, value_set=pa.array(list(SYSTEM_ROLES))).to_numpy(zero_copy_only=False))
    k_row = m_row[kept]
    pos = np.arange(len(kept)) - np.searchsorted(k_row, k_row, side="left")
    even = pos % 2 == 0
    bad = np.where(even, ~is_user[kept], ~is_asst[kept])
    n_msgs = np.bincount(k_row, minlength=n)
    non_alt = (np.bincount(k_row, weights=bad, minlength=n) > 0) | (n_msgs % 2 == 1) | (n_msgs == 0)
    skips.add("no_media", file, lines[~has_media])
    skips.add("non_alternating", file, lines[has_media & non_alt])
    good = has_media & ~non_alt

    q_sel = np.flatnonzero(even & good[k_row])
    q_idx, a_idx = kept[q_sel], kept[q_sel + 1]
    t_row, turn = k_row[q_sel], (pos[q_sel] // 2).astype(np.int32)
    texts = msgs.column("text").combine_chunks()
    q_mask = np.zeros(len(texts), dtype=bool)
    q_mask[q_idx] = True
    a_mask = np.zeros(len(texts), dtype=bool)
    a_mask[a_idx] = True  # q_idx / a_idx are increasing: sequential filters beat random takes
    question = strip_tags(texts.filter(pa.array(q_mask)))
    answer = strip_tags(texts.filter(pa.array(a_mask)))
    empty = (pc.utf8_length(answer).to_numpy() == 0)
    if empty.any():
        skips.add("empty_answer", file, lines[t_row[empty]], [f"turn {k}" for k in turn[empty][: skips.keep]])
        keep = pa.array(~empty)
        question, answer = question.filter(keep), answer.filter(keep)
        t_row, turn = t_row[~empty], turn[~empty]
    take = pa.array(t_row)
    m = len(t_row)

    # -- row-level fields, then broadcast to turns
    stem, name = Path(file).stem, Path(file).name
    ident = rows.column("id").combine_chunks()
    line_s = pc.cast(pa.array(lines), pa.string())
    row_id = pc.if_else(pc.greater(pc.fill_null(pc.utf8_length(ident), 0), 0), ident,
                        pc.binary_join_element_wise(name, pc.binary_join_element_wise("L", line_s, ""), "-"))
    src = pc.utf8_trim_whitespace(pc.fill_null(rows.column("data_source").combine_chunks(), ""))
    source = pc.if_else(pc.equal(src, ""), stem, src)
    video_kind = is_frames | (pc.equal(media_kind, "video").to_numpy(zero_copy_only=False))
    vid_id = pc.fill_null(rows.column("video_id").combine_chunks(), "")
    # media per row (resample + resolve once), then a cheap list take for rows with several turns
    urows = np.unique(t_row)
    media = _media_lists(plan, urows, opts.target_frames, root).take(pa.array(np.searchsorted(urows, t_row)))
    # video rows without a video_id: the row id for frame lists, the (resolved) path for a video file
    first_path = media.flatten().take(pa.array(media.offsets.to_numpy()[:-1]))
    vid_t = vid_id.take(take)
    video_uid = pc.if_else(pc.equal(vid_t, ""), pc.if_else(pa.array(is_frames), row_id, "").take(take), vid_t)
    video_uid = pc.if_else(pc.and_(pc.equal(video_uid, ""), pc.equal(media_kind.take(take), "video")), first_path,
                           video_uid)
    video_uid = pc.if_else(pa.array(video_kind[t_row]), video_uid, "")
    duration = rows.column("duration").to_numpy(zero_copy_only=False).astype(np.float64)
    secs = np.where(np.isnan(duration), np.where(is_frames, n_frames / opts.frames_fps, np.nan), duration)
    dur_label = bucket_labels(np.nan_to_num(secs, nan=0.0), DUR_EDGES, DUR_LABELS)
    dur_label = pc.if_else(pa.array(~video_kind), "image", pc.if_else(pa.array(np.isnan(secs)), "unknown", dur_label))
    bucket = pc.if_else(pa.array(video_kind), VIDEO_BUCKET, IMAGE_BUCKET)

    row_id_t = row_id.take(take)
    turn_s = pc.binary_join_element_wise("t", pc.cast(pa.array(turn), pa.string()), "")
    qa_uid = pc.binary_join_element_wise(PREFIX[kind], row_id_t, turn_s, "::")
    if export_only:
        return pa.table({"qa_uid": qa_uid, "question": question, "answer": answer, "media": media,
                         "media_kind": media_kind.take(take)})
    bucket_t = bucket.take(take)
    if paper_only:
        return pa.table({"qa_uid": qa_uid, "row_id": row_id_t, "turn": pa.array(turn, pa.int32()),
                         "video_uid": video_uid, "bucket": bucket_t, "question": question, "answer": answer,
                         "media": media, "media_kind": media_kind.take(take), "n_frames": pa.array(n_frames).take(take),
                         "source": source.take(take), "file": constant(m, file),
                         "line": pa.array(lines, pa.int64()).take(take)})
    nq, na = normalize(question), normalize(answer)
    q_words, a_words = word_counts(nq), word_counts(na)
    temporal = pc.if_else(pc.match_substring_regex(question, TEMPORAL_RE, ignore_case=True), "temporal", "static")
    form = pc.if_else(pc.match_substring_regex(question, MCQ_RE), "MCQ", "Open")
    strata = [bucket_t, dur_label.take(take), temporal, form,
              bucket_labels(q_words, Q_LEN_EDGES, Q_LEN_LABELS), bucket_labels(a_words, A_LEN_EDGES, A_LEN_LABELS)]
    keys = fingerprints(nq, na)
    source_t = source.take(take)
    cols = {
        "qa_uid": qa_uid,
        "row_id": row_id_t,
        "turn": pa.array(turn, pa.int32()),
        "video_uid": video_uid,
        "bucket": bucket_t,
        "question": question,
        "answer": answer,
        "media": media,
        "media_kind": media_kind.take(take),
        "n_frames": pa.array(n_frames).take(take),
        "source": source_t,
        "source_group": source_groups(source_t, opts.source_groups),
        "duration_bucket": strata[1],
        "temporal_category": strata[2],
        "question_form": strata[3],
        "q_len_bucket": strata[4],
        "a_len_bucket": strata[5],
        "stratum": pc.binary_join_element_wise(*strata, "|"),
        "dedup_key": keys[0],
        "dedup_key_q": keys[1],
        "file": constant(m, file),
        "line": pa.array(lines, pa.int64()).take(take),
    }
    return pa.table(cols)

