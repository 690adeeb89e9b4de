"""Random selection instances: GDO-shaped ones vectorized so that 4.5M candidates build in seconds,
and tiny ones described as plain arrays for the brute-force oracle (``gdo_opt.testing.oracle``).

The shape follows docs/solvers.md and the solver notes: budget K = 1.5% of N; strata with skewed
sizes and per-stratum quotas [⌊0.5t⌋, ⌈1.5t⌉] around the proportional share t; about half of the
pool are video QA pairs (~24 per video, at most 8 per video selected); 3% of the items in dedup
groups of 2-3; a video share [lo, hi]; a temporal floor among the selected video items; floors of
half the proportional share on the largest sources. ``PRESETS`` mimic the share bounds of the goal
presets (presets/*.toml) and tilt the scores so that those shares bind, which is what makes the
presets differ for the solvers. Everything derives from one ``numpy`` generator: same arguments,
same instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gdo_opt.selection.problem import SelectionProblem
from gdo_opt.testing.oracle import Description

# video share [lo, hi], temporal floor within video, score tilt for video and temporal items
PRESETS: dict[str, dict] = {
    "notes": {"video_share": (0.40, 0.55), "temporal": 0.30, "video_tilt": 0.10, "temporal_tilt": 0.10},
    # tilts chosen so that different bounds bind: minloss its video floor, diverse its temporal
    # floor (video share inside its band), temp and temp_plus their video ceilings
    "minloss": {"video_share": (0.15, 0.32), "temporal": 0.05, "video_tilt": -0.90, "temporal_tilt": -0.30},
    "diverse": {"video_share": (0.25, 0.45), "temporal": 0.15, "video_tilt": -0.15, "temporal_tilt": -0.80},
    "temp": {"video_share": (0.35, 0.50), "temporal": 0.20, "video_tilt": 0.15, "temporal_tilt": 0.30},
    "temp_plus": {"video_share": (0.50, 0.64), "temporal": 0.38, "video_tilt": 0.60, "temporal_tilt": 0.60},
}


@dataclass
class Instance:
    """A built problem plus the per-candidate fields the studies report shares of."""

    problem: SelectionProblem
    n: int
    k: int
    preset: str
    seed: int
    is_video: np.ndarray  # bool (N,)
    is_temporal: np.ndarray  # bool (N,)
    stratum: np.ndarray  # int64 (N,)
    source: np.ndarray  # int64 (N,)
    video: np.ndarray  # int64 (N,), -1 for images

    def shares(self, indices) -> dict[str, float]:
        """Field shares of a selection (the frontier study plots these)."""
        idx = np.asarray(indices, dtype=np.int64)
        k = max(1, idx.size)
        vid = self.is_video[idx]
        return {
            "video_share": float(vid.sum()) / k,
            "temporal_share_within_video": float((self.is_temporal[idx] & vid).sum()) / max(1, int(vid.sum())),
            "temporal_share": float(self.is_temporal[idx].sum()) / k,
            "sources_used": int(np.unique(self.source[idx]).size),
            "strata_used": int(np.unique(self.stratum[idx]).size),
            "videos_used": int(np.unique(self.video[idx][vid]).size),
        }


def make_instance(
    n: int,
    seed: int = 0,
    preset: str = "notes",
    k_frac: float = 0.015,
    budget: int | None = None,
    n_strata: int | None = None,
    video_frac: float = 0.5,
    qa_per_video: float = 24.0,
    n_videos: int | None = None,
    per_video_cap: int = 8,
    dedup_frac: float = 0.03,
    n_sources: int = 60,
    n_source_floors: int = 30,
    stratum_tol: float = 0.5,
    video_share: tuple[float, float] | None = None,
    temporal_floor: float | None = None,
) -> Instance:
    """Build one instance; ``budget`` overrides K, ``video_share``/``temporal_floor`` the preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    rng = np.random.default_rng(seed)
    k = int(budget) if budget is not None else max(1, int(round(k_frac * n)))
    if n_strata is None:
        n_strata = int(min(6000, max(8, round(4 * math.sqrt(n)))))

    # ----- fields
    is_video = rng.random(n) < video_frac
    n_video_items = int(is_video.sum())
    if n_videos is None:
        n_videos = max(1, int(round(n_video_items / qa_per_video)))
    video = np.full(n, -1, dtype=np.int64)
    video[is_video] = rng.integers(0, n_videos, size=n_video_items)
    # temporal is mostly a property of the video, partly of the question
    video_temporal = rng.random(n_videos) < 0.35
    is_temporal = np.zeros(n, dtype=bool)
    is_temporal[is_video] = np.where(
        rng.random(n_video_items) < 0.8, video_temporal[video[is_video]], rng.random(n_video_items) < 0.35
    )
    stratum_weight = rng.lognormal(0.0, 1.0, n_strata)
    stratum = _sample(rng, stratum_weight, n)
    # image and video items come from different sources; source sizes are Zipf-like
    source_weight = 1.0 / (np.arange(n_sources) + 2.0) ** 1.1
    half = n_sources // 2
    source = np.empty(n, dtype=np.int64)
    source[~is_video] = _sample(rng, source_weight[:half], n - n_video_items)
    source[is_video] = half + _sample(rng, source_weight[half:], n_video_items)

    # ----- scores: noise + per-stratum / per-source / per-video effects + preset tilts
    scores = (
        rng.normal(0.0, 1.0, n)
        + 0.3 * rng.normal(0.0, 1.0, n_strata)[stratum]
        + 0.3 * rng.normal(0.0, 1.0, n_sources)[source]
        + spec["video_tilt"] * is_video
        + spec["temporal_tilt"] * is_temporal
    )
    # QA pairs of one video share a video effect; images get an item effect of the same size, so
    # video and image scores have the same spread and only the preset tilts move the shares
    video_effect = 0.5 * rng.normal(0.0, 1.0, n_videos)
    scores[is_video] += video_effect[video[is_video]]
    scores[~is_video] += 0.5 * rng.normal(0.0, 1.0, n - n_video_items)

    # ----- dedup groups of 2-3 among dedup_frac of the items
    dedup = np.full(n, -1, dtype=np.int64)
    m = int(dedup_frac * n)
    if m >= 2:
        members = rng.choice(n, size=m, replace=False)
        sizes = rng.integers(2, 4, size=m // 2 + 1)
        group_of = np.repeat(np.arange(sizes.size), sizes)[:m]
        dedup[members] = group_of
        lonely = np.bincount(group_of)[group_of] < 2
        dedup[members[lonely]] = -1

    # ----- the problem
    problem = SelectionProblem(scores, k)
    sizes = np.bincount(stratum, minlength=n_strata)
    t = k * sizes / n
    lo = np.floor((1 - stratum_tol) * t)
    hi = np.ceil((1 + stratum_tol) * t)
    present = sizes > 0
    problem.add_group_bounds(
        stratum,
        lo=dict(zip(np.flatnonzero(present).tolist(), lo[present].tolist())),
        hi=dict(zip(np.flatnonzero(present).tolist(), hi[present].tolist())),
        name="stratum",
    )
    if per_video_cap:
        problem.add_cap(video, per_video_cap, name="per_video")
    if (dedup >= 0).any():
        problem.add_exclusive(dedup, name="dedup")
    vs = video_share if video_share is not None else spec["video_share"]
    problem.add_share(is_video, lo=vs[0], hi=vs[1], name="video_share")
    tf = spec["temporal"] if temporal_floor is None else temporal_floor
    if tf > 0 and is_video.any():
        problem.add_share(is_temporal & is_video, lo=tf, of=is_video, name="temporal_in_video")
    if n_source_floors:
        src_sizes = np.bincount(source, minlength=n_sources)
        top = np.argsort(-src_sizes, kind="stable")[:n_source_floors]
        floors = np.floor(0.5 * k * src_sizes[top] / n)
        keep = floors > 0
        if keep.any():
            problem.add_group_bounds(
                source, lo=dict(zip(top[keep].tolist(), floors[keep].tolist())), name="source_floor"
            )
    return Instance(problem, n, k, preset, seed, is_video, is_temporal, stratum, source, video)


def _sample(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Categorical sample by inverse CDF (faster than rng.choice with p at millions)."""
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(size), side="right").astype(np.int64)


def random_small_instance(seed: int, n: int | None = None) -> Description:
    """A tiny instance with every family (group lo/hi, cap, exclusive, share with and without
    ``of``, linear rows) as a ``Description``, for the brute-force oracle. It may be infeasible on
    purpose. ``.problem()`` builds the engine's problem from it."""
    rng = np.random.default_rng(seed)
    n = int(n or rng.integers(8, 17))
    scores = np.round(rng.normal(0.0, 1.0, n), 3)
    k = int(rng.integers(2, max(3, n // 2) + 1))
    budget = (k, k) if rng.random() < 0.6 else (max(0, k - 2), k)
    d = Description(scores, budget)
    groups = rng.integers(0, 3, n)
    d.add("group", "g", labels=groups, lo={0: int(rng.integers(0, 3))}, hi={1: int(rng.integers(1, 4))})
    d.add("cap", "cap", labels=rng.integers(0, 4, n), at_most=int(rng.integers(1, 3)))
    dedup = np.where(rng.random(n) < 0.4, rng.integers(0, 3, n), -1)
    if (dedup >= 0).sum() >= 2:
        d.add("exclusive", "dedup", labels=dedup)
    a = rng.random(n) < 0.5
    d.add("share", "share", mask=a, lo=round(float(rng.uniform(0.1, 0.4)), 2),
          hi=round(float(rng.uniform(0.5, 0.9)), 2))
    b = a | (rng.random(n) < 0.3)
    inner = a & (rng.random(n) < 0.6)
    if rng.random() < 0.7:
        d.add("share", "share_of", mask=inner, lo=round(float(rng.uniform(0.1, 0.5)), 2), of=b)
    if rng.random() < 0.5:
        coef = np.round(rng.uniform(0.0, 2.0, n), 1)
        d.add("linear", "weight", coef=coef, hi=round(float(coef.sum() * 0.5), 1))
    if rng.random() < 0.3:
        d.add("linear", "balance", coef=np.where(rng.random(n) < 0.5, 1.0, -1.0), lo=-1.0)
    return d


def random_small_problem(seed: int, n: int | None = None) -> SelectionProblem:
    """``random_small_instance(seed, n).problem()``."""
    return random_small_instance(seed, n).problem()


# --------------------------------------------------------------------------- the hard family


@dataclass
class HardInstance:
    """The hard family (issue 15): knapsack + covering rows, tight quotas, many capped videos,
    overlapping dedup, three shares. ``description`` is what the oracle reads at tiny N."""

    problem: SelectionProblem
    description: Description
    n: int
    k: int
    seed: int
    tokens: np.ndarray  # float64 (N,), the knapsack row's weights
    gpu_s: np.ndarray  # float64 (N,), the covering row's weights
    stratum: np.ndarray  # int64 (N,)
    video: np.ndarray  # int64 (N,), -1 for images
    dedup: np.ndarray  # int64 (N,), -1 outside dedup groups


def hard_description(
    n: int,
    seed: int = 0,
    k: int | None = None,
    n_strata: int | None = None,
    n_videos: int | None = None,
    video_frac: float = 0.6,
    caps: tuple[int, int] = (2, 8),
    dedup_frac: float = 0.10,
    token_tightness: float = 0.85,
    gpu_tightness: float = 0.97,
) -> tuple[Description, dict]:
    """The hard family as a ``Description`` plus its per-candidate fields, vectorized and seeded.

    Why it is hard where ``make_instance`` is not: scores grow with tokens, so a token budget at
    ``token_tightness`` × the tokens of the score-top-K binds (a knapsack row with heterogeneous
    weights makes the LP fractional); GPU-seconds grow with video length, so a covering floor at
    ``gpu_tightness`` × the score-top-K's GPU-seconds pulls the other way; strata quotas
    [⌊0.8c⌋, ⌈1.2c⌉] around the proportional share c are tight; ~0.15·N videos with caps in
    ``caps``; dedup groups of 2-5 over ``dedup_frac`` of the pool, drawn across videos; three
    shares (video, temporal within video, multi-turn) tilted so that they bind. Defaults: K = N/50,
    N/50 strata (1M → K = 20k, 20k strata, 150k videos).
    """
    rng = np.random.default_rng(seed)
    k = max(1, n // 50) if k is None else int(k)
    n_strata = max(1, n // 50) if n_strata is None else int(n_strata)
    n_videos = max(1, int(round(0.15 * n))) if n_videos is None else int(n_videos)

    is_video = rng.random(n) < video_frac
    nv = int(is_video.sum())
    video = np.full(n, -1, dtype=np.int64)
    video[is_video] = rng.integers(0, n_videos, size=nv)
    vid = video[is_video]
    duration = rng.lognormal(np.log(60.0), 0.8, n_videos)  # seconds per video
    video_temporal = rng.random(n_videos) < 0.4
    is_temporal = np.zeros(n, dtype=bool)
    is_temporal[is_video] = np.where(rng.random(nv) < 0.8, video_temporal[vid], rng.random(nv) < 0.4)
    multi_turn = rng.random(n) < 0.3
    stratum = _sample(rng, rng.lognormal(0.0, 0.5, n_strata), n)

    # tokens: text + visual (image tiles, or frames by duration); GPU-seconds follow video length
    tokens = rng.lognormal(np.log(150.0), 0.8, n)
    tokens[~is_video] += 576.0 * rng.integers(1, 5, size=n - nv)
    frames = np.minimum(32.0, np.ceil(duration[vid] / 4.0))
    tokens[is_video] += 64.0 * frames * rng.uniform(0.5, 1.5, nv)
    tokens = np.round(tokens)
    gpu_s = np.round(0.002 * tokens * rng.lognormal(0.0, 0.3, n), 4)
    gpu_s[is_video] += np.round(0.05 * duration[vid] * rng.lognormal(0.0, 0.3, nv), 4)

    log_t = np.log(tokens)
    scores = (
        0.8 * (log_t - log_t.mean()) / log_t.std()
        + rng.normal(0.0, 1.0, n)
        + 0.3 * rng.normal(0.0, 1.0, n_strata)[stratum]
        + 0.2 * is_video + 0.3 * is_temporal + 0.4 * multi_turn
    )
    scores[is_video] += 1.2 * rng.normal(0.0, 1.0, n_videos)[vid]  # good videos fill their caps

    dedup = np.full(n, -1, dtype=np.int64)
    m = int(dedup_frac * n)
    if m >= 2:
        members = rng.choice(n, size=m, replace=False)
        group_of = np.repeat(np.arange(m // 2 + 1), rng.integers(2, 6, size=m // 2 + 1))[:m]
        dedup[members] = group_of
        dedup[members[np.bincount(group_of)[group_of] < 2]] = -1
        scores[members] += 0.8 * rng.normal(0.0, 1.0, m // 2 + 1)[group_of]  # near-duplicates score alike
    scores = np.round(scores, 6)

    top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    sizes = np.bincount(stratum, minlength=n_strata)
    c = k * sizes / n
    present = np.flatnonzero(sizes > 0)
    present_videos = np.unique(vid)
    cap = rng.integers(caps[0], caps[1] + 1, size=n_videos)
    d = Description(scores, k)
    d.add("group", "stratum", labels=stratum,
          lo=dict(zip(present.tolist(), np.floor(0.8 * c[present]).tolist())),
          hi=dict(zip(present.tolist(), np.ceil(1.2 * c[present]).tolist())))
    d.add("cap", "per_video", labels=video, at_most=dict(zip(present_videos.tolist(), cap[present_videos].tolist())))
    if (dedup >= 0).any():
        d.add("exclusive", "dedup", labels=dedup)
    d.add("linear", "token_budget", coef=tokens, hi=float(np.floor(token_tightness * tokens[top].sum())))
    d.add("linear", "gpu_floor", coef=gpu_s, lo=float(np.round(gpu_tightness * gpu_s[top].sum(), 4)))
    d.add("share", "video_share", mask=is_video, lo=0.45, hi=0.60)
    if is_video.any():
        d.add("share", "temporal_in_video", mask=is_temporal & is_video, lo=0.30, of=is_video)
    d.add("share", "multi_turn", mask=multi_turn, hi=0.25)
    fields = dict(tokens=tokens, gpu_s=gpu_s, stratum=stratum, video=video, dedup=dedup)
    return d, fields


def make_hard_instance(n: int, seed: int = 0, k: int | None = None, **kw) -> HardInstance:
    """The hard family built as a ``SelectionProblem`` through the public API (see
    ``hard_description``); 1M candidates → K = 20k."""
    d, fields = hard_description(n, seed=seed, k=k, **kw)
    return HardInstance(d.problem(), d, n, int(d.budget), seed, **fields)


def hard_small_instance(seed: int, n: int | None = None) -> Description:
    """The hard family at oracle size (N = 14-18): same rows, scaled so that each can bind
    (K ≈ N/3, 3 strata, caps 1-3, dedup over 30%). It may be infeasible."""
    rng = np.random.default_rng(10_000 + seed)
    n = int(n or rng.integers(14, 19))
    d, _ = hard_description(n, seed=seed, k=max(2, n // 3), n_strata=3, n_videos=max(2, n // 5),
                            caps=(1, 3), dedup_frac=0.3,
                            token_tightness=0.9, gpu_tightness=0.8)
    return d
