"""Derive a goal's feasibility set C_g from its preset and the pool, as engine constraints.

Everything is computed column-wise (factorize + bincount), so deriving the constraints of a
million-candidate pool costs well under a second. Quotas are proportional *within each bucket*,
scaled by the goal's target video share, so they never contradict the share constraints; the
temporal category is not a default stratum field for the same reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gdo_opt.errors import GdoError
from gdo_opt.goal.hygiene import hygiene_keep
from gdo_opt.goal.preset import Feasibility

VIDEO_BUCKET = "short_video"


@dataclass
class PoolView:
    """The columns constraint derivation needs, as numpy arrays (the eligible candidates only)."""

    video: np.ndarray  # bool: bucket == short_video
    temporal: np.ndarray  # bool: counts as temporal for the goal
    temporal_source: str  # how `temporal` was decided
    stratum_codes: np.ndarray  # int64 code of (bucket, stratum fields)
    stratum_labels: np.ndarray  # object: readable label per code
    video_uid: np.ndarray  # int64 code per row, -1 for rows without a video
    dedup: np.ndarray | None  # int64 dedup-key code, None when dedup is off
    source_group: np.ndarray  # object
    _reach: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.video.size)


@dataclass
class Derived:
    """Constraint rows handed to the engine plus how each was derived (for the report)."""

    notes: list[dict] = field(default_factory=list)


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    """Sorted integer codes of a column (strings stay strings; no per-row Python work)."""
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _codes(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer code of the tuple of ``columns`` per row (mixed radix) and a readable label per code."""
    combined = np.zeros(len(frame), dtype=np.int64)
    uniques = []
    for column in columns:
        c, u = _factorize(frame[column])
        combined = combined * max(len(u), 1) + c
        uniques.append(u)
    codes, keys = pd.factorize(combined, sort=True)
    labels = []
    for key in np.asarray(keys, dtype=np.int64):
        parts = []
        for u in reversed(uniques):
            key, r = divmod(int(key), max(len(u), 1))
            parts.append(str(u[r]))
        labels.append("|".join(reversed(parts)))
    return codes.astype(np.int64), np.array(labels, dtype=object)


def temporal_mask(frame: pd.DataFrame, feas: Feasibility, temporal_prob: np.ndarray | None) -> tuple[np.ndarray, str]:
    """Temporal rows: temporal_prob ≥ threshold where the descriptors give it, else the regex category."""
    by_category = frame["temporal_category"].astype(str).isin(list(feas.temporal_categories)).to_numpy()
    if temporal_prob is None or not np.isfinite(temporal_prob).any():
        return by_category, "temporal_category in " + ",".join(feas.temporal_categories)
    known = np.isfinite(temporal_prob)
    refined = np.where(known, np.nan_to_num(temporal_prob, nan=0.0) >= feas.temporal_prob_threshold, by_category)
    return refined.astype(bool), (
        f"temporal_prob >= {feas.temporal_prob_threshold} ({int(known.sum())} rows), "
        f"temporal_category otherwise ({int((~known).sum())} rows)"
    )


def _video_codes(values: pd.Series) -> np.ndarray:
    codes, _ = _factorize(values)
    empty = (values.to_numpy(dtype=object) == "") | values.isna().to_numpy()
    codes[empty] = -1
    return codes


def pool_view(frame: pd.DataFrame, feas: Feasibility, temporal_prob: np.ndarray | None) -> PoolView:
    for column in ("bucket", "video_uid", "source_group", "temporal_category", *feas.stratum_fields):
        if column not in frame.columns:
            raise GdoError(f"candidates: column {column} missing (see docs/CONTRACTS.md)")
    if feas.dedup and feas.dedup_key not in frame.columns:
        raise GdoError(f"candidates: column {feas.dedup_key} missing but the preset sets feasibility.dedup = true")
    temporal, how = temporal_mask(frame, feas, temporal_prob)
    codes, labels = _codes(frame, ["bucket", *feas.stratum_fields])
    return PoolView(
        video=(frame["bucket"].astype(str) == VIDEO_BUCKET).to_numpy(),
        temporal=temporal,
        temporal_source=how,
        stratum_codes=codes,
        stratum_labels=labels,
        video_uid=_video_codes(frame["video_uid"]),
        dedup=_factorize(frame[feas.dedup_key])[0] if feas.dedup else None,
        source_group=frame["source_group"].to_numpy(dtype=object),
    )


def reachable(view: PoolView, cap: int | None) -> np.ndarray:
    """Rows that survive dedup (first of each key) — and the per-video cap's count per row.

    Returns a float weight per row: 1 for a row that can be selected alongside the others, 0 for
    a duplicate or a row beyond the per-video cap. Its sums are upper bounds on what any feasible
    selection can take from a group, used to keep quotas and budgets attainable.
    """
    if cap in view._reach:
        return view._reach[cap]
    keep = hygiene_keep(view.n, view.dedup, view.video_uid, cap)
    view._reach[cap] = keep.astype(np.float64)
    return view._reach[cap]


def bucket_targets(view: PoolView, k: int, feas: Feasibility) -> tuple[float, float]:
    """Target counts (video, image) for proportional quotas: K × the middle of the video share."""
    lo, hi = feas.video_share
    k_video = k * (lo + hi) / 2.0
    if not view.video.any():
        k_video = 0.0
    elif view.video.all():
        k_video = float(k)
    return k_video, k - k_video


def _proportional(view: PoolView, codes: np.ndarray, n_groups: int, k: int, feas: Feasibility) -> np.ndarray:
    """t_g = Σ_b K_b · n_{g,b} / N_b over the buckets b (video, image)."""
    k_video, k_image = bucket_targets(view, k, feas)
    target = np.zeros(n_groups)
    for mask, k_b in ((view.video, k_video), (~view.video, k_image)):
        n_b = int(mask.sum())
        if n_b:
            target += k_b * np.bincount(codes[mask], minlength=n_groups) / n_b
    return target


def add_constraints(problem, view: PoolView, k: int, feas: Feasibility) -> Derived:
    """Add C_g to ``problem`` (budget already set to K) and describe each family for the report."""
    derived = Derived()
    avail = reachable(view, feas.per_video_cap)
    n_strata = view.stratum_labels.size

    if feas.stratum_tolerance is not None:
        tol = feas.stratum_tolerance
        target = _proportional(view, view.stratum_codes, n_strata, k, feas)
        have = np.bincount(view.stratum_codes, weights=avail, minlength=n_strata)
        lo = np.minimum(np.floor((1 - tol) * target), have)
        lo = np.maximum(lo, 0)
        hi = np.maximum(np.ceil((1 + tol) * target), lo)
        labels = view.stratum_labels
        names = [str(label) for label in labels]
        problem.add_group_bounds(  # categorical: no re-factorizing of millions of rows, named groups
            pd.Categorical.from_codes(view.stratum_codes, categories=names),
            lo=dict(zip(names, lo.tolist())),
            hi=dict(zip(names, hi.tolist())),
            name="stratum_quota",
        )
        derived.notes.append({
            "name": "stratum_quota", "kind": "group",
            "rule": f"per (bucket, {', '.join(feas.stratum_fields)}): floor((1-{tol})t) <= count <= ceil((1+{tol})t), "
                    "t = K_bucket * n_s / N_bucket, lo capped by reachable rows",
            "groups": int(n_strata),
            "labels": {str(g): str(labels[g]) for g in range(n_strata)} if n_strata <= 500 else "too many to list",
        })

    if feas.per_video_cap is not None:
        problem.add_cap(view.video_uid, at_most=feas.per_video_cap, name="per_video_cap")
        derived.notes.append({"name": "per_video_cap", "kind": "cap",
                              "rule": f"at most {feas.per_video_cap} QA pairs per video_uid"})

    if view.dedup is not None:
        problem.add_exclusive(view.dedup, name="dedup")
        derived.notes.append({"name": "dedup", "kind": "exclusive", "rule": "at most one row per dedup key"})

    lo, hi = feas.video_share
    if lo > 0 or hi < 1:
        problem.add_share(view.video, lo=lo, hi=hi, name="video_share")
        derived.notes.append({"name": "video_share", "kind": "share",
                              "rule": f"{lo} <= share of short_video rows <= {hi}"})

    t = feas.temporal_share_within_video
    if t > 0 and view.video.any():
        problem.add_share(view.video & view.temporal, lo=t, hi=None, of=view.video, name="temporal_share")
        derived.notes.append({"name": "temporal_share", "kind": "share",
                              "rule": f"share of temporal rows among video rows >= {t} ({view.temporal_source})"})

    floors = feas.source_floors
    if floors.top_n > 0 and floors.floor > 0:
        codes, uniques = pd.factorize(view.source_group, sort=True)
        codes = codes.astype(np.int64)
        sizes = np.bincount(codes, minlength=uniques.size)
        order = np.lexsort((np.arange(uniques.size), -sizes))[: floors.top_n]  # largest, ties by name
        target = _proportional(view, codes, uniques.size, k, feas)
        have = np.bincount(codes, weights=avail, minlength=uniques.size)
        lo_g = np.minimum(np.floor(floors.floor * target), have)
        bounds = {str(uniques[g]): float(lo_g[g]) for g in order if lo_g[g] > 0}
        if bounds:
            problem.add_group_bounds(view.source_group, lo=bounds, hi=None, name="source_floor")
            derived.notes.append({"name": "source_floor", "kind": "group",
                                  "rule": f"top {floors.top_n} source groups keep >= floor({floors.floor} * t_g)",
                                  "floors": dict(sorted(bounds.items()))})
    return derived


def max_reachable(view: PoolView, feas: Feasibility) -> int:
    """An upper bound on any feasible subset's size under dedup and the per-video cap."""
    return int(reachable(view, feas.per_video_cap).sum()) if (view.dedup is not None or feas.per_video_cap) else view.n


def ceil_int(x: float) -> int:
    return int(math.ceil(x - 1e-9))


def share_caps(view: PoolView, feas: Feasibility) -> dict[str, int]:
    """Largest K each share constraint can support with the rows dedup and caps leave (auto budget)."""
    avail = reachable(view, feas.per_video_cap)
    caps: dict[str, int] = {}
    lo, hi = feas.video_share
    video = float(avail[view.video].sum())
    if lo > 0:
        caps["video_share_lo"] = int(video / lo)
    if hi < 1:
        caps["video_share_hi"] = int(float(avail[~view.video].sum()) / (1 - hi))
    t = feas.temporal_share_within_video
    if t > 0 and lo > 0:
        caps["temporal_share"] = int(float(avail[view.video & view.temporal].sum()) / (t * lo))
    return caps
