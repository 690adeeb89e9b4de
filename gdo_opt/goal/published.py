"""The published GDO builder's view of a pool (rujiewu/GDO ``gdo/build_pair.py``), vectorized.

The paper's four goals share one score ρ and differ only in budget and feasibility set; this module
reproduces the builder's pool-side quantities from our candidate table with whole-column operations:
the seven stratum fields (bucket, duration, temporal category, question form, question length,
answer length, source group), the exact-text dedup key, the full-pool field profile and source
counts, the shared ρ (text heuristics + the legacy VDS3 / quality terms, with the builder's
fallbacks and ablation switches) and the automatic budget K (distribution rule + VDS3 adjustment).
Group orders follow first appearance in the pool, as the builder's ``Counter`` insertion order does,
so largest-remainder quotas and top-k source groups break ties the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.goal.metrics import LEGACY
from gdo_opt.goal.paper import SCORE_KEYS
from gdo_opt.goal.published_text import TEXT_FEATURES, normalize_text, source_group, text_features
from gdo_opt.schema import text_column

VIDEO, IMAGE = "short_video", "image_qa"
FIELDS = ("bucket", "duration_bucket", "temporal_category", "question_form", "q_len_bucket", "a_len_bucket",
          "source_group")
Q_EDGES, Q_LABELS = [6, 14, 30, 60], ["q_tiny", "q_short", "q_medium", "q_long", "q_very_long"]
A_EDGES, A_LABELS = [2, 8, 24, 64], ["a_tiny", "a_short", "a_medium", "a_long", "a_very_long"]
D_EDGES, D_LABELS = [1, 8, 24, 64, 160], ["image", "very_short", "short", "medium", "long", "very_long"]


def _dict_codes(arr: pa.Array) -> np.ndarray:
    """int64 codes of equal strings, in order of first appearance (Arrow's dictionary encoding)."""
    return pc.dictionary_encode(arr).indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _first_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """Codes in order of first appearance (the builder's Counter insertion order)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=False)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def small_codes(codes: np.ndarray, n_labels: int) -> np.ndarray:
    """Codes in the narrowest signed integer type that holds ``n_labels`` (and -1): a field with a
    handful of labels takes 1 byte per row instead of 8 (the pool keeps seven such fields and their
    first-appearance renumbering: ~20 MB at 200k rows as int64)."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_labels <= np.iinfo(dtype).max:
            return codes.astype(dtype, copy=False)
    return codes.astype(np.int64, copy=False)


@dataclass
class PublishedPool:
    """Pool-side quantities of the published builder, one entry per candidate row."""

    coded: dict[str, tuple[np.ndarray, np.ndarray]]  # each stratum field as (int codes, labels per code)
    stratum: np.ndarray  # int64 code, first-appearance order
    stratum_labels: np.ndarray  # "bucket|duration|...|source_group" per code
    video: np.ndarray  # bool: bucket == short_video
    text_key: np.ndarray  # int64: same code = same normalized (question, answer) -> dedup
    video_uid: np.ndarray  # int64 code, -1 for image rows / rows without a video id
    source_code: np.ndarray  # int64 code of the normalized raw source, first-appearance order
    q_tokens: np.ndarray
    a_tokens: np.ndarray
    a_distinct: np.ndarray
    qa_uid: pa.Array  # string (the Uni-kx order is keyed on it)
    _cache: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.video.size)

    @property
    def fields(self) -> dict[str, np.ndarray]:
        """The seven fields as object arrays of labels (built on first use: 8 bytes per row and
        field, 56 MB at 1M rows; the hot paths use ``first_codes`` / ``field_values``)."""
        if "fields" not in self._cache:
            self._cache["fields"] = {name: labels[codes] for name, (codes, labels) in self.coded.items()}
        return self._cache["fields"]

    def field_values(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Labels of field ``name`` for ``rows`` (object array)."""
        codes, labels = self.coded[name]
        return labels[codes[rows]]

    def first_codes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(codes, labels) of field ``name`` numbered in order of first appearance, as
        ``pd.factorize(labels, sort=False)`` numbers them, from the small integer codes."""
        key = ("first", name)
        if key not in self._cache:
            codes, labels = self.coded[name]
            first, seen = pd.factorize(codes, sort=False)
            self._cache[key] = (small_codes(first, len(seen)), np.asarray(labels, dtype=object)[seen])
        return self._cache[key]

    def profile(self) -> dict[str, dict[str, float]]:
        """``stable_profile``: each field's share per value over the full pool."""
        if "profile" not in self._cache:
            out = {}
            for name in FIELDS:
                codes, uniques = self.first_codes(name)
                counts = np.bincount(codes, minlength=uniques.size)
                out[name] = {str(u): float(c / self.n) for u, c in zip(uniques, counts)}
            self._cache["profile"] = out
        return self._cache["profile"]

    def field_frame(self) -> pd.DataFrame:
        """The seven fields as categorical columns (cheap to count and sort at 1M rows)."""
        coded = self.coded
        out = {}
        for name in FIELDS:  # categories in sorted order, as factorize(sort=True) of the labels has them
            codes, labels = coded[name]
            order = np.argsort(np.asarray(labels, dtype=str), kind="stable")
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size)
            out[name] = pd.Categorical.from_codes(rank[codes], categories=pd.Index(np.asarray(labels)[order], dtype=object))
        return pd.DataFrame(out)

    def stratum_counts(self) -> np.ndarray:
        return np.bincount(self.stratum, minlength=self.stratum_labels.size)


def _first_appearance_codes(*keys: np.ndarray) -> np.ndarray:
    """int64 code per row of equal key tuples, numbered in order of first appearance.

    Fast path: a hash factorization of the first key; when every row agrees with its group's first
    row on the other keys, those codes are the tuples' codes (the other keys only ever split a
    group on a 64-bit collision of the first, then the tuple sort below decides)."""
    if not keys[0].size:
        return np.zeros(0, np.int64)
    codes, uniques = pd.factorize(keys[0], sort=False)
    first = np.full(len(uniques), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)  # each code's first row
    if all(np.array_equal(k, k[first[codes]]) for k in keys[1:]):
        return codes.astype(np.int64)
    _, first, inverse = np.unique(np.stack(keys, axis=1), axis=0, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


def published_pool(frame: pd.DataFrame, target_frames: int = 32) -> PublishedPool:
    """The builder's fields from a candidate table (columns bucket, n_frames, source, video_uid,
    qa_uid, and question / answer or their ``text_features`` columns from a lean ingest). Frames are
    counted after resampling to ``target_frames``."""
    if all(name in frame.columns for name in TEXT_FEATURES):
        feats = {name: frame[name].to_numpy() for name in TEXT_FEATURES}
    else:
        feats = text_features(text_column(frame["question"], keep_chunks=True),
                              text_column(frame["answer"], keep_chunks=True))
    video = pc.equal(text_column(frame["bucket"]), VIDEO).to_numpy(zero_copy_only=False)
    n_frames = np.minimum(pd.to_numeric(frame["n_frames"], errors="coerce").fillna(0).to_numpy(), target_frames)
    q_tokens = feats["pub_q_tokens"].astype(np.int64)
    a_tokens, a_distinct = feats["pub_a_tokens"].astype(np.int64), feats["pub_a_distinct"].astype(np.int64)
    mcq, temporal = feats["pub_mcq"].astype(bool), feats["pub_temporal"].astype(bool)
    # sources: normalize each distinct value once; codes follow first appearance of the normalized text
    enc = pc.dictionary_encode(text_column(frame["source"]))
    dict_codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    norm_codes, src_uniques = pd.factorize(normalize_text(enc.dictionary).to_numpy(zero_copy_only=False))
    src_codes, first_norm = pd.factorize(norm_codes[dict_codes])
    src_uniques = np.asarray(src_uniques, dtype=object)[first_norm]
    groups = np.asarray([source_group(s) for s in src_uniques], dtype=object)[src_codes]  # per distinct source
    # each field as (codes, labels); object columns are a take of the labels, no per-row strings
    dur = np.where(video, np.searchsorted(np.asarray(D_EDGES), n_frames, side="left"), 0)
    coded = {
        "bucket": (video.astype(np.int8), np.array([IMAGE, VIDEO], dtype=object)),
        "duration_bucket": (dur.astype(np.int8), np.asarray(D_LABELS, dtype=object)),
        "temporal_category": (np.where(video, np.where(temporal, 1, 2), 0).astype(np.int8),
                              np.array(["Static", "Temporal", "Mixed"], dtype=object)),
        "question_form": (mcq.astype(np.int8), np.array(["Open", "MCQ"], dtype=object)),
        "q_len_bucket": (np.searchsorted(np.asarray(Q_EDGES), q_tokens, side="left").astype(np.int8),
                         np.asarray(Q_LABELS, dtype=object)),
        "a_len_bucket": (np.searchsorted(np.asarray(A_EDGES), a_tokens, side="left").astype(np.int8),
                         np.asarray(A_LABELS, dtype=object)),
    }
    g_codes, g_labels = pd.factorize(groups)
    coded["source_group"] = (small_codes(g_codes, len(g_labels)), np.asarray(g_labels, dtype=object))
    combined = np.zeros(len(video), dtype=np.int64)
    for name in FIELDS:
        combined = combined * len(coded[name][1]) + coded[name][0]
    stratum, uniq = pd.factorize(combined, sort=False)
    stratum = stratum.astype(np.int64)
    parts = []
    rest = np.asarray(uniq, dtype=np.int64)
    for name in reversed(FIELDS):
        size = len(coded[name][1])
        parts.append(coded[name][1][rest % size])
        rest = rest // size
    labels = parts[-1].astype(object)
    for part in reversed(parts[:-1]):
        labels = labels + "|" + part
    text_key = _first_appearance_codes(feats["pub_text_h1"], feats["pub_text_h2"])
    uid = pc.fill_null(text_column(frame["video_uid"]), "")
    vcodes = _dict_codes(uid)
    vcodes = np.where(video & pc.not_equal(uid, "").to_numpy(zero_copy_only=False), vcodes, -1).astype(np.int64)
    return PublishedPool(coded, stratum, labels, video, text_key.astype(np.int64), vcodes, src_codes.astype(np.int64),
                         q_tokens, a_tokens, a_distinct, text_column(frame["qa_uid"]))


# ------------------------------------------------------------------------------------------ ρ
@dataclass
class Legacy:
    """The merged-metrics columns the builder reads: file-wide stats + values aligned to the pool."""

    stats: dict[str, tuple[float, float]]  # column -> (mean, sample std) over every file row
    aligned: dict[str, np.ndarray]  # column -> value per candidate (NaN: missing)
    present: np.ndarray  # bool: candidate has a metrics row
    file_values: dict[str, np.ndarray]  # column -> value per metrics-file row


def running_stats(values: np.ndarray) -> tuple[float, float] | None:
    """``RunningStats``: mean and sample std of the finite values; std 1 when count <= 1 or var <= 1e-12."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    mean = float(v.mean())
    if v.size <= 1:
        return mean, 1.0
    var = float(((v - mean) ** 2).sum() / (v.size - 1))
    return mean, (1.0 if var <= 1e-12 else math.sqrt(var))


def legacy_from(metrics) -> Legacy | None:
    """Legacy columns of a loaded Metrics (None without a metrics file)."""
    file_columns = getattr(metrics, "file_columns", None)
    position = getattr(metrics, "position", None)
    if not file_columns or position is None:
        return None
    stats, aligned = {}, {}
    hit = position >= 0
    values = getattr(metrics, "values", None) or {}
    for name in LEGACY:
        col = file_columns.get(name)
        if col is None:
            continue
        s = running_stats(col)
        if s is not None:
            stats[name] = s
        if name in values:  # align_metrics aligned this very column already: share it
            aligned[name] = values[name]
            continue
        out = np.full(position.size, np.nan)
        out[hit] = col[position[hit]]
        aligned[name] = out
    return Legacy(stats, aligned, hit, {k: v for k, v in file_columns.items() if k in LEGACY})


def _z(values: np.ndarray | None, stats: dict, key: str, cap: float) -> np.ndarray:
    """``z_value``: clipped z-score; NaN where the value or the column's stats are missing."""
    if values is None or key not in stats:
        return np.full(0 if values is None else values.size, np.nan)
    mean, std = stats[key]
    z = (values - mean) / std if std > 0 else np.zeros_like(values)
    return np.clip(z, -cap, cap) if cap > 0 else z


def vds3_and_quality(cols: dict[str, np.ndarray], n: int, stats: dict, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """``legacy_vds3_score`` with its fallbacks: −z(lv)+z(lb)+z(fd), else z(vds)+0.5 z(fd), else z(vds), else 0."""
    z = {}
    for name in LEGACY:
        v = cols.get(name)
        z[name] = _z(v, stats, name, cap) if v is not None else np.full(n, np.nan)
        if z[name].size == 0:
            z[name] = np.full(n, np.nan)
    lv, lb, fd, vd = z["loss_video"], z["loss_blind"], z["frame_diversity"], z["vds"]
    full = np.isfinite(lv) & np.isfinite(lb) & np.isfinite(fd)
    vf = np.isfinite(vd) & np.isfinite(fd)
    vds3 = np.where(full, -lv + lb + fd, np.where(vf, vd + 0.5 * fd, np.where(np.isfinite(vd), vd, 0.0)))
    quality = np.where(np.isfinite(z["quality_score"]), z["quality_score"], 0.0)
    return vds3, quality


@dataclass(frozen=True)
class ScoreSwitches:
    """The builder's score knobs and ablations (defaults = the released values)."""

    vds3_weight: float = SCORE_KEYS["vds3_weight"]
    zscore_cap: float = SCORE_KEYS["zscore_cap"]
    video_base_weight: float = SCORE_KEYS["video_base_weight"]
    video_quality_weight: float = SCORE_KEYS["video_quality_weight"]
    image_base_weight: float = SCORE_KEYS["image_base_weight"]
    image_quality_weight: float = SCORE_KEYS["image_quality_weight"]
    missing_penalty: float = SCORE_KEYS["missing_penalty"]
    disable_vds: bool = False
    disable_ppl: bool = False
    disable_sc: bool = False


def published_score(pool: PublishedPool, legacy: Legacy | None, sw: ScoreSwitches = ScoreSwitches()) -> dict:
    """``candidate_score`` for every row: returns ρ ("score") and its parts (base, vds3, quality).

    The same expressions as the builder, one term at a time: each term's temporaries are gone
    before the next is computed (all of them alive at once were ~50 MB at 200k rows)."""
    base = _base_score(pool, sw)
    cap = sw.zscore_cap
    if legacy is not None:
        vds3, quality = vds3_and_quality(legacy.aligned, pool.n, legacy.stats, cap)
        vds3, quality = np.where(legacy.present, vds3, 0.0), np.where(legacy.present, quality, 0.0)
        present = legacy.present
    else:
        vds3, quality, present = np.zeros(pool.n), np.zeros(pool.n), np.zeros(pool.n, dtype=bool)
    denom = max(cap, 1e-6)
    clip = (lambda v: np.clip(v, -cap, cap)) if cap > 0 else (lambda v: v)
    base_norm, qn_ = np.tanh(base / 3.0), clip(quality) / denom
    vn = 0.0 if sw.disable_vds else clip(vds3) / denom
    video_score = sw.video_base_weight * base_norm + np.where(
        present, (0.0 if sw.disable_vds else sw.vds3_weight * vn) + (0.0 if sw.disable_sc else
                                                                     sw.video_quality_weight * qn_),
        -max(0.0, sw.missing_penalty))
    del vn
    image_score = sw.image_base_weight * base_norm + np.where(
        present & (not sw.disable_sc), sw.image_quality_weight * qn_, 0.0)
    del base_norm, qn_
    score = np.where(pool.video, video_score, image_score)
    return {"score": score, "base": base, "vds3": vds3, "quality": quality, "present": present}


def _base_score(pool: PublishedPool, sw: ScoreSwitches) -> np.ndarray:
    """The builder's text-only part of the score (QA naturalness, length fit, strata alignment,
    source rarity, temporal bonus), separately for video and image rows."""
    ppl = 0.0 if sw.disable_ppl else _naturalness(pool)
    diff = _length_fit(pool)
    align = _alignment(pool)
    codes = pool.source_code
    counts = np.bincount(codes, minlength=int(codes.max(initial=-1)) + 1)
    spr = np.log((pool.n + 1.0) / (counts[codes] + 1.0))
    t_codes, t_labels = pool.coded["temporal_category"]
    tb = np.where((np.asarray(t_labels, dtype=object) == "Temporal")[t_codes], 1.0, 0.2)
    return np.where(pool.video, 1.0 * ppl + 0.85 * diff + 0.9 * align + 0.55 * tb + 0.15 * spr,
                    1.1 * ppl + 0.85 * diff + 0.9 * align + 0.15 * spr)


def _naturalness(pool: PublishedPool) -> np.ndarray:
    """QA naturalness (the PPL-like term): question and answer lengths near 14 / 16 tokens, few repeats."""
    qn = np.maximum(1, pool.q_tokens).astype(np.float64)
    an = np.maximum(1, pool.a_tokens).astype(np.float64)
    repeat = np.maximum(0.0, 0.55 - pool.a_distinct / an)
    return -np.abs(np.log(qn) - math.log(14.0)) + 1.25 * -np.abs(np.log(an) - math.log(16.0)) - 1.2 * repeat


def _length_fit(pool: PublishedPool) -> np.ndarray:
    """Difficulty fit: a Gaussian in log length around 22 tokens."""
    x = np.maximum(1.0, pool.q_tokens + 0.5 * pool.a_tokens)
    zz = np.abs(np.log(x) - math.log(22.0))
    return np.exp(-zz * zz / (2.0 * 0.85 * 0.85))


def _alignment(pool: PublishedPool) -> np.ndarray:
    """Mean log share of the row's value in the six non-bucket fields (the builder's profile match);
    summed one field at a time in the builder's order."""
    prof = pool.profile()
    total = 0
    for name in FIELDS[1:]:
        codes, uniques = pool.first_codes(name)
        p = np.array([max(prof[name].get(str(u), 1e-9), 1e-9) for u in uniques])
        total = total + np.log(p)[codes]
    return total / len(FIELDS[1:])


# ------------------------------------------------------------------------------------------ K
def recommend_count(total: int, stratum_counts: np.ndarray, p) -> tuple[int, dict]:
    """``recommend_target_count``: max(min count, min ratio, 16·N_eff-style, tail) capped by max rules."""
    counts = stratum_counts[stratum_counts > 0]
    if total <= 0:
        return 0, {}
    if counts.size == 0:
        return min(total, max(p.min_count, int(total * max(p.min_ratio, 0.001)))), {"mode": "fallback_no_strata"}
    probs = counts / float(total)
    entropy = float(-(probs * np.log(np.maximum(probs, 1e-12))).sum())
    n_eff_strata = math.exp(entropy)
    ordered = np.sort(probs)[::-1]
    cov = np.cumsum(ordered)
    hit = np.flatnonzero(cov >= p.coverage_mass)
    covered = int(hit[0]) + 1 if hit.size else ordered.size
    p_tail = float(ordered[covered - 1])
    n_eff = int(math.ceil(max(1.0, n_eff_strata * max(1.0, p.effective_strata_mult))))
    n_tail = int(math.ceil(max(1.0, p.tail_target) / max(p_tail, 1e-9)))
    low = int(math.ceil(total * max(p.min_ratio, 0.0)))
    high = int(math.floor(total * max(p.max_ratio, 0.0))) or total
    n = max(p.min_count, low, n_eff, n_tail)
    n = max(1, min(n, p.max_count, high, total))
    return n, {"mode": "distribution_auto", "effective_strata": n_eff_strata, "coverage_mass": p.coverage_mass,
               "covered_strata": covered, "tail_prob_at_coverage": p_tail, "n_from_effective_strata": n_eff,
               "n_from_tail_coverage": n_tail, "n_from_min_ratio": low, "n_from_max_ratio": high,
               "recommended_count": n, "recommended_ratio": n / float(total)}


def vds3_budget(base: int, total: int, legacy: Legacy, p, cap: float) -> tuple[int, dict]:
    """``apply_legacy_vds3_budget``: grow K until it holds ``vds3_target_positive`` VDS3-positive rows."""
    file_values = legacy.file_values
    rows = next(iter(file_values.values())).size if file_values else 0
    if base <= 0 or total <= 0:
        return base, {"enabled": False, "reason": "empty_target_or_total"}
    if rows == 0:
        return base, {"enabled": False, "reason": "no_legacy_metrics"}
    vds3, _ = vds3_and_quality(file_values, rows, legacy.stats, cap)
    pos = int((vds3 > p.vds3_threshold).sum())
    ratio = pos / float(rows)
    if ratio <= 0:
        return base, {"enabled": True, "reason": "zero_positive_ratio", "vds3_positive_ratio": 0.0,
                      "vds3_positive_count": pos, "vds3_total_count": rows, "n_from_vds3_positive": total,
                      "adjusted_target": base}
    n_from = int(math.ceil(max(1, p.vds3_target_positive) / ratio))
    cap_ratio = int(math.floor(total * max(p.max_ratio, 0.0))) or total
    n_cap = min(total, max(1, p.max_count), max(1, int(math.ceil(base * max(1.0, p.vds3_max_mult)))),
                max(1, cap_ratio))
    adjusted = max(1, min(min(max(base, n_from), n_cap), total))
    return adjusted, {"enabled": True, "vds3_positive_ratio": ratio, "vds3_positive_count": pos,
                      "vds3_total_count": rows, "vds3_threshold": p.vds3_threshold,
                      "vds3_target_positive": p.vds3_target_positive, "n_from_vds3_positive": n_from,
                      "vds3_adjust_cap": n_cap, "adjusted_target": adjusted}


def largest_remainder(counts: np.ndarray, k: int) -> np.ndarray:
    """``target_quotas``: floor(K·c/N) plus one for the largest remainders (ties: first appearance)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total <= 0:
        return np.zeros_like(counts)
    raw = k * (counts / float(total))
    quota = np.floor(raw).astype(np.int64)
    remain = k - int(quota.sum())
    if remain > 0:
        order = np.argsort(-(raw - quota), kind="stable")
        np.add.at(quota, order[np.arange(remain) % order.size], 1)
    return quota


def source_floors(groups, k: int, p) -> dict[str, int]:
    """``compute_source_group_floor_requirements``: floors for the top-k source groups, total <= 70 % K.
    ``groups``: each row's group (array), or its (first-appearance codes, labels)."""
    codes, uniques = groups if isinstance(groups, tuple) else _first_codes(groups)
    n = codes.size
    if p.source_floor_topk <= 0 or p.min_source_group_ratio <= 0 or n == 0 or k <= 0:
        return {}
    counts = np.bincount(codes, minlength=uniques.size)
    order = np.argsort(-counts, kind="stable")[: p.source_floor_topk]
    floor_abs = max(1, int(math.ceil(k * p.min_source_group_ratio)))
    req = {}
    for g in order:
        expected = k * (counts[g] / float(n))
        required = max(floor_abs, int(math.ceil(max(0.0, p.source_floor_frac_of_expected) * expected)))
        if required <= int(math.floor(expected)):
            req[str(uniques[g])] = required
    max_total = int(math.floor(k * 0.7))
    if max_total <= 0:
        return {}
    total = sum(req.values())
    if total > max_total:
        scale = max_total / float(total)
        req = {g: max(1, int(math.floor(v * scale))) for g, v in req.items()}
    return req
