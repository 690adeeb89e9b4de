"""An independent check of a built subset against its preset, written from the preset's words
(docs/presets.md) with plain Python loops over the candidate table -- it shares no code with the
constraint derivation (gdo_opt.goal.constraints) or the problem's check()."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def _reachable(frame, dedup: bool, dedup_key: str, cap: int | None) -> list[bool]:
    """Rows a feasible subset could all take: first row of each dedup key, first `cap` rows per video."""
    seen_keys, per_video, out = set(), Counter(), []
    for key, uid in zip(frame[dedup_key] if dedup else [None] * len(frame), frame["video_uid"]):
        ok = True
        if dedup:
            ok = key not in seen_keys
            seen_keys.add(key)
        if ok and cap is not None and uid:
            ok = per_video[uid] < cap
            per_video[uid] += 1
        out.append(ok)
    return out


def violations(frame, temporal_prob, preset, k: int, chosen) -> list[str]:
    """Every way ``chosen`` (row positions of ``frame``, the eligible pool) breaks the preset's C_g."""
    feas = preset.feasibility
    rows = [int(i) for i in chosen]
    bad = []
    if len(rows) != k or len(set(rows)) != len(rows):
        bad.append(f"budget: {len(rows)} rows ({len(set(rows))} distinct), K = {k}")
    if feas.dedup:
        keys = Counter(frame[feas.dedup_key].iloc[rows])
        bad += [f"dedup: key {key} taken {n} times" for key, n in keys.items() if n > 1]
    if feas.per_video_cap is not None:
        uids = Counter(u for u in frame["video_uid"].iloc[rows] if u)
        bad += [f"per_video_cap: {u} taken {n} times" for u, n in uids.items() if n > feas.per_video_cap]
    video = [b == "short_video" for b in frame["bucket"]]
    n_video = sum(video[i] for i in rows)
    lo, hi = feas.video_share
    if not lo - 1e-9 <= n_video / len(rows) <= hi + 1e-9:
        bad.append(f"video_share: {n_video / len(rows):.4f} outside [{lo}, {hi}]")
    if feas.temporal_share_within_video > 0 and any(video):
        temporal = []
        for i, cat in enumerate(frame["temporal_category"]):
            p = None if temporal_prob is None else temporal_prob[i]
            if p is not None and math.isfinite(p):
                temporal.append(p >= feas.temporal_prob_threshold)
            else:
                temporal.append(cat in feas.temporal_categories)
        n_tv = sum(video[i] and temporal[i] for i in rows)
        if n_tv < feas.temporal_share_within_video * n_video - 1e-6:
            bad.append(f"temporal_share: {n_tv} of {n_video} video rows")
    reach = _reachable(frame, feas.dedup, feas.dedup_key, feas.per_video_cap)
    # proportional targets: K_video = K x middle of the video share, spread by each group's share of its bucket
    k_video = 0.0 if not any(video) else float(k) if all(video) else k * (lo + hi) / 2
    k_bucket = {True: k_video, False: k - k_video}
    n_bucket = Counter(video)

    def targets(labels):
        per = Counter(zip(labels, video))
        t = {}
        for label in dict.fromkeys(labels):  # video part first, then image part (same float order as numpy)
            t[label] = 0.0 + k_bucket[True] * per[(label, True)] / max(n_bucket[True], 1)
            t[label] += k_bucket[False] * per[(label, False)] / max(n_bucket[False], 1)
        return t

    def counts(labels, which):
        c = Counter()
        for i in which:
            c[labels[i]] += 1
        return c

    if feas.stratum_tolerance is not None:
        labels = ["|".join(str(frame[f].iloc[i]) for f in ("bucket", *feas.stratum_fields)) for i in range(len(frame))]
        t, have = targets(labels), counts(labels, [i for i, r in enumerate(reach) if r])
        got = counts(labels, rows)
        tol = feas.stratum_tolerance
        for s, target in t.items():
            low = max(min(math.floor((1 - tol) * target), have[s]), 0)
            high = max(math.ceil((1 + tol) * target), low)
            if not low <= got[s] <= high:
                bad.append(f"stratum_quota: {s} has {got[s]}, needs [{low}, {high}]")
    floors = feas.source_floors
    if floors.top_n > 0 and floors.floor > 0:
        labels = [str(g) for g in frame["source_group"]]
        size = Counter(labels)
        top = sorted(size, key=lambda g: (-size[g], g))[: floors.top_n]
        t, have = targets(labels), counts(labels, [i for i, r in enumerate(reach) if r])
        got = counts(labels, rows)
        for g in top:
            need = min(math.floor(floors.floor * t[g]), have[g])
            if got[g] < need:
                bad.append(f"source_floor: {g} has {got[g]}, needs {need}")
    return bad


def eligible_view(frame, metrics, result):
    """The eligible rows of ``frame`` (the pool the preset was solved on) and their temporal_prob."""
    pool = frame.iloc[result.eligible].reset_index(drop=True)
    tp = metrics.values.get("temporal_prob")
    chosen = np.searchsorted(result.eligible, result.indices)
    return pool, None if tp is None else tp[result.eligible], chosen
