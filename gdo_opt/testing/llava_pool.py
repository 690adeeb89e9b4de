"""A LLaVA-shaped pool in the published GDO input format, generated vectorized (``generate``).

Shared by tests (tests/subset/test_audit.py) and the experiments (experiments/llava_pool.py is its
command line; experiments/vs_reference.py runs it).

It writes three files the published builder (rujiewu/GDO ``gdo/build_pair.py``) reads unchanged:

- ``onevision.jsonl``: LLaVA-OneVision image QA rows ``{id, data_source, images: [path], messages}``
  (1–3 user/assistant turns, ``<image>`` in the first user turn);
- ``video.jsonl``: LLaVA-Video rows ``{id, video_id, data_source, images: [frame paths], messages}``,
  several rows per video, 4–64 frames;
- ``metrics.jsonl``: the merged metrics as the published ``merge_metrics.py`` writes them, every
  column (``qa_uid``, ``video_uid``, ``loss_video``, ``loss_blind``, ``frame_diversity``, ``vds``,
  ``quality_score``, ``ppl``, ``amm``, ``tnc_score``, ``self_consistency``, ``cluster_score``,
  ``cluster_hardness`` and the nested ``data_quality_metrics`` with ``cluster_id`` /
  ``cluster_dist``); ``quality_score`` follows the published blend of robust z-scores; ~1% of
  pairs have no metrics row, as in real merges.

Sources follow real LLaVA names (``CLEVR-Math(MathV360K)``, ``0_30_s_academic_v0_1``, ...) with a
Zipf skew; questions span every length bucket, ~30% are multiple choice (``Choices:``), video
questions carry temporal cue words ~45% of the time, ~2% of pairs repeat another pair's text.
qa_uid = ``ov::{id}::t{turn}`` / ``vv::{id}::t{turn}``, as both builders key pairs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = np.array("red blue green small large round square wooden metal person dog cat car table chair "
                 "window door tree street room kitchen field river building sign shirt ball cup plate "
                 "book phone screen chart graph number label text object shape color area left right "
                 "top bottom center image scene picture".split(), dtype=object)
TEMPORAL = np.array(["before", "after", "then", "while", "during", "first", "next", "finally", "later",
                     "earlier"], dtype=object)
IMAGE_SOURCES = ["CLEVR-Math(MathV360K)", "ai2d(cauldron,llava_format)", "sharegpt4v(coco)", "sharegpt4v(sam)",
                 "VisualWebInstruct(filtered)", "image_textualization(filtered)", "chartqa(cauldron,llava_format)",
                 "docvqa(cauldron,llava_format)", "geo170k(qa)", "VQA-RAD(MathV360K)", "ureader_kg",
                 "ureader_qa_processed", "allava_instruct_vflan4v", "llavar_gpt4_20k", "textocr(gpt4v)",
                 "scienceqa(nona_context)", "infographic_vqa", "mathqa", "st_vqa(cauldron,llava_format)",
                 "visual7w(cauldron,llava_format)", "tallyqa(cauldron,llava_format)", "iconqa(MathV360K)",
                 "hateful_memes(cauldron,llava_format)", "robut_wtq(cauldron,llava_format)", "vision_flan(filtered)",
                 "lrv_chart", "magpie_pro(l3_80b_st)", "image_textualization_dense_caption", "k12_printing",
                 "screen2words(cauldron)"]
VIDEO_SOURCES = [f"{d}_{p}_v0_1" for d in ("0_30_s", "30_60_s", "1_2_m", "2_3_m")
                 for p in ("academic", "youtube", "activitynet", "nextqa", "perceptiontest")]
METRIC_KEYS = ["loss_video", "loss_blind", "frame_diversity", "vds", "quality_score", "ppl", "amm", "tnc_score",
               "self_consistency", "cluster_score", "cluster_hardness"]


def _zipf(k: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** s
    return w / w.sum()


NL = "\\n"  # texts are built already JSON-escaped: ASCII, no quotes, newline written as backslash-n


def _js(values) -> np.ndarray:
    """JSON string literals of generated texts (object arrays: no fixed-width copies at 1M rows)."""
    return '"' + np.asarray(values, dtype=object) + '"'


def _num(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    out = np.char.mod("%.6g", values).astype(object)
    out[~np.isfinite(values)] = "null"
    return out


def _fillers(rng, max_len: int, variants: int = 8) -> np.ndarray:
    """filler[length, variant]: neutral words (no temporal or choice cue), a few variants per length."""
    table = np.empty((max_len + 1, variants), dtype=object)
    for length in range(max_len + 1):
        for v in range(variants):
            table[length, v] = " ".join(WORDS[rng.integers(0, WORDS.size, length)])
    return table


def _pairs(rng, n: int, video: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(question, answer) texts for n pairs; lengths spread over the published q/a length buckets."""
    fill = _fillers(rng, 90)
    var = rng.integers(0, fill.shape[1], n)
    q_len = np.minimum(rng.choice([2, 6, 12, 24, 45, 75], n, p=[0.08, 0.22, 0.3, 0.22, 0.13, 0.05])
                       + rng.integers(0, 5, n), 90)
    mcq = rng.random(n) < 0.3
    temporal = video & (rng.random(n) < 0.45)
    cue = np.where(temporal, TEMPORAL[rng.integers(0, TEMPORAL.size, n)], "")
    head = np.where(video, np.where(temporal, "What happens " + cue + " the", "What is shown in the"),
                    "What is in the")
    question = head.astype(object) + " " + fill[q_len, var] + " of item " + ids.astype(str).astype(object) + "?"
    options = (NL + "Choices:" + NL + "A. " + WORDS[rng.integers(0, WORDS.size, n)] + NL + "B. "
               + WORDS[rng.integers(0, WORDS.size, n)] + NL + "C. none" + NL + "D. all")
    question = np.where(mcq, question + options, question)
    a_len = np.minimum(rng.choice([1, 4, 14, 40, 80], n, p=[0.2, 0.35, 0.25, 0.15, 0.05])
                       + rng.integers(0, 3, n), 90)
    answer = np.where(mcq, np.array(["A", "B", "C", "D"], dtype=object)[rng.integers(0, 4, n)],
                      fill[a_len, (var + 3) % fill.shape[1]])
    answer = np.where(answer == "", "yes", answer)
    dup = np.flatnonzero(rng.random(n) < 0.02)  # ~2% exact repeats of another pair's text
    src = rng.integers(0, n, dup.size)
    src = src[video[src] == video[dup]]
    dup = dup[: src.size]
    question[dup], answer[dup] = question[src], answer[src]
    return question, answer


def _turn_snippets(question: np.ndarray, answer: np.ndarray, first: np.ndarray, tag: np.ndarray) -> np.ndarray:
    user = np.where(first, tag + NL, "") + question
    return ('{"role":"user","content":' + _js(user).astype(object) + '},{"role":"assistant","content":'
            + _js(answer).astype(object) + "}")


def _rows(rng, n_pairs: int, max_turns: int, p_turns) -> tuple[np.ndarray, np.ndarray]:
    """Split n_pairs into rows of 1..max_turns turns: (turns per row, row of each pair)."""
    turns = rng.choice(np.arange(1, max_turns + 1), n_pairs, p=p_turns)  # enough: every row >= 1 turn
    cum = np.cumsum(turns)
    rows = int(np.searchsorted(cum, n_pairs)) + 1
    turns = turns[:rows].copy()
    turns[-1] -= int(cum[rows - 1] - n_pairs)
    return turns, np.repeat(np.arange(rows), turns)


def _messages(pair_row: np.ndarray, turn: np.ndarray, snippets: np.ndarray, rows: int) -> np.ndarray:
    """'[' + turn snippets joined by ',' + ']' per row (at most 3 turns: one concatenation per turn)."""
    out = np.full(rows, "[", dtype=object)
    for t in range(int(turn.max()) + 1):
        at = turn == t
        sep = "" if t == 0 else ","
        out[pair_row[at]] = out[pair_row[at]] + sep + snippets[at]
    return out + "]"


CHUNK_ROWS = 50_000  # lines are built and written this many rows at a time (bounded memory)


def _row_chunks(turns: np.ndarray):
    """(first row, end row, first pair, end pair) of each chunk of rows."""
    pair_start = np.concatenate(([0], np.cumsum(turns)))
    for r0 in range(0, turns.size, CHUNK_ROWS):
        r1 = min(turns.size, r0 + CHUNK_ROWS)
        yield r0, r1, int(pair_start[r0]), int(pair_start[r1])


def _write_image_rows(rng, n_pairs: int, path: Path) -> tuple[np.ndarray, int]:
    """OneVision rows of 1-3 turns; returns the qa_uid of every pair and the row count."""
    turns, pair_row = _rows(rng, n_pairs, 3, [0.8, 0.15, 0.05])
    turn = np.arange(n_pairs) - np.repeat(np.cumsum(turns) - turns, turns)
    src_all = rng.choice(len(IMAGE_SOURCES), turns.size, p=_zipf(len(IMAGE_SOURCES)))
    uids = np.empty(n_pairs, dtype=object)
    with _LineWriter(path) as out:
        for r0, r1, p0, p1 in _row_chunks(turns):
            ident = np.char.mod("ov%07d", np.arange(r0, r1)).astype(object)
            q, a = _pairs(rng, p1 - p0, np.zeros(p1 - p0, bool), np.arange(p0, p1))
            snippets = _turn_snippets(q, a, turn[p0:p1] == 0, np.array("<image>", dtype=object))
            msgs = _messages(pair_row[p0:p1] - r0, turn[p0:p1], snippets, r1 - r0)
            src = np.array(IMAGE_SOURCES, dtype=object)[src_all[r0:r1]]
            out.write('{"id":' + _js(ident) + ',"data_source":' + _js(src)
                      + ',"images":["images/' + ident + '.jpg"],"messages":' + msgs + "}")
            uids[p0:p1] = "ov::" + ident[pair_row[p0:p1] - r0] + "::t" + turn[p0:p1].astype(str).astype(object)
    return uids, int(turns.size)


def _write_video_rows(rng, n_pairs: int, path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """LLaVA-Video rows of 1-3 turns, ~3 rows per video, 4-64 frames; qa_uid and video_id per pair."""
    turns, pair_row = _rows(rng, n_pairs, 3, [0.6, 0.3, 0.1])
    rows = turns.size
    turn = np.arange(n_pairs) - np.repeat(np.cumsum(turns) - turns, turns)
    n_videos = max(1, rows // 3)
    video_num = np.sort(rng.integers(0, n_videos, rows))
    per_video_frames = rng.choice([4, 8, 16, 24, 32, 48, 64], n_videos, p=[0.05, 0.15, 0.2, 0.2, 0.2, 0.1, 0.1])
    per_video_src = np.array(VIDEO_SOURCES, dtype=object)[rng.choice(len(VIDEO_SOURCES), n_videos,
                                                                     p=_zipf(len(VIDEO_SOURCES), 0.8))]
    uids, video_uid = np.empty(n_pairs, dtype=object), np.empty(n_pairs, dtype=object)
    with _LineWriter(path) as out:
        for r0, r1, p0, p1 in _row_chunks(turns):
            ident = np.char.mod("vv%07d", np.arange(r0, r1)).astype(object)
            vnum = video_num[r0:r1]
            video_id = np.char.mod("vid%06d", vnum).astype(object)
            frames = per_video_frames[vnum]
            local = pair_row[p0:p1] - r0
            q, a = _pairs(rng, p1 - p0, np.ones(p1 - p0, bool), np.arange(p0, p1))
            tags = np.char.multiply("<image>", frames[local]).astype(object)
            msgs = _messages(local, turn[p0:p1], _turn_snippets(q, a, turn[p0:p1] == 0, tags), r1 - r0)
            lists = np.array([",".join(f'"frames/vid{v:06d}/{i:03d}.jpg"' for i in range(per_video_frames[v]))
                              for v in vnum], dtype=object)
            out.write('{"id":' + _js(ident) + ',"video_id":' + _js(video_id)
                      + ',"data_source":' + _js(per_video_src[vnum])
                      + ',"images":[' + lists + '],"messages":' + msgs + "}")
            uids[p0:p1] = "vv::" + ident[local] + "::t" + turn[p0:p1].astype(str).astype(object)
            video_uid[p0:p1] = video_id[local]
    return uids, video_uid, {"video_rows": rows, "videos": int(np.unique(video_num).size)}


def generate(pairs: int, out: Path, seed: int = 0, video_share: float = 0.42) -> dict:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n_vid_pairs = int(round(pairs * video_share))
    n_img_pairs = pairs - n_vid_pairs
    img_uid, image_rows = _write_image_rows(rng, n_img_pairs, out / "onevision.jsonl")
    vid_uid, vid_video, stats = _write_video_rows(rng, n_vid_pairs, out / "video.jsonl")
    stats["onevision_rows"] = image_rows

    # ---- merged metrics, every column the published merge writes
    uid = np.concatenate([img_uid, vid_uid])
    video_uid = np.concatenate([np.full(n_img_pairs, "", dtype=object), vid_video])
    is_video = np.arange(pairs) >= n_img_pairs
    metrics = _metrics(rng, pairs, is_video)
    keep = np.flatnonzero(rng.random(pairs) >= 0.01)
    with _LineWriter(out / "metrics.jsonl") as handle:
        for start in range(0, keep.size, 4 * CHUNK_ROWS):
            take = keep[start:start + 4 * CHUNK_ROWS]
            handle.write(_metrics_lines(uid[take], video_uid[take], {k: v[take] for k, v in metrics.items()}))
    stats.update(pairs=pairs, image_pairs=n_img_pairs, video_pairs=n_vid_pairs, metrics_rows=int(keep.size))
    (out / "pool.json").write_text(json.dumps({"seed": seed, **stats}, indent=2, sort_keys=True) + "\n")
    return stats


def _robust_z(x: np.ndarray) -> np.ndarray:
    q25, q50, q75 = np.quantile(x, [0.25, 0.5, 0.75])
    return (x - q50) / max(max(q75 - q25, 1e-6) / 1.349, 1e-6)


def _metrics(rng, n: int, video: np.ndarray) -> dict[str, np.ndarray]:
    """Descriptor values shaped like the published extractor's, blended as its merge does."""
    loss_video = rng.gamma(2.0, 0.6, n)
    loss_blind = loss_video + rng.normal(np.where(video, 0.35, 0.1), 0.4)
    frame_div = np.where(video, rng.beta(2, 3, n), 0.0)
    vds = loss_blind - loss_video
    ppl = np.exp(loss_video)
    amm = np.where(video, rng.gamma(2.0, 1.5, n), 0.0)
    tnc = rng.beta(2, 2, n)
    sc = rng.beta(5, 2, n)
    dist = rng.gamma(2.0, 0.5, n)
    rep = np.exp(-dist)
    sig = 1.0 / (1.0 + np.exp(-(_robust_z(vds) + _robust_z(frame_div))))
    quality = (0.28 * sig + 0.18 * sc + 0.14 * np.exp(-np.abs(_robust_z(ppl))) + 0.12 * np.exp(-np.abs(_robust_z(amm)))
               + 0.12 * tnc + 0.10 * rep + 0.06 * (1.0 - rep))
    return {"loss_video": loss_video, "loss_blind": loss_blind, "frame_diversity": frame_div, "vds": vds,
            "quality_score": quality, "ppl": ppl, "amm": amm, "tnc_score": tnc, "self_consistency": sc,
            "cluster_score": rep, "cluster_hardness": 1.0 - rep, "cluster_id": rng.integers(0, 4096, n),
            "cluster_dist": dist}


def _metrics_lines(uid, video_uid, m: dict[str, np.ndarray]) -> np.ndarray:
    text = {k: _num(m[k]) for k in METRIC_KEYS + ["cluster_dist"]}
    body = None
    for k in METRIC_KEYS:
        part = f'"{k}":' + text[k]
        body = part if body is None else body + "," + part
    nested = (body + ',"cluster_id":' + m["cluster_id"].astype(str).astype(object) + ',"cluster_dist":'
              + text["cluster_dist"])
    return ('{"qa_uid":' + _js(uid).astype(object) + ',"video_uid":' + _js(video_uid).astype(object) + ","
            + body + ',"data_quality_metrics":{' + nested + "}}")


class _LineWriter:
    """Lines appended chunk by chunk to a temporary file, moved in place when all were written."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")

    def __enter__(self):
        self.handle = open(self.tmp, "w", encoding="utf-8")
        return self

    def write(self, lines: np.ndarray) -> None:
        if lines.size:
            self.handle.write("\n".join(lines.tolist()))
            self.handle.write("\n")

    def __exit__(self, kind, *_):
        self.handle.close()
        if kind is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)
