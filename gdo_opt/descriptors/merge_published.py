"""The published merge (rujiewu/GDO ``gdo/merge_metrics.py``), vectorized: clusters, scales, quality.

- Features: the 22 extraction features (hashed text, RGB statistics) + temporal need, AMM, frame
  diversity, PPL, VDS; missing values count as 0, as the published ``safe_float`` does.
- Clusters: MiniBatchKMeans(k, random_state=seed, batch_size=8192, n_init=3, reassignment_ratio=0.01)
  fitted as the published stream: ``partial_fit`` on the first k rows, then on blocks of 8192 rows
  (rows in qa_uid order); k = 4096 capped by the number of rows. coverage = exp(−d), hardness = 1 − coverage.
- Scales: median and IQR / 1.349 (IQR at least 1e-6), unclipped; self-consistency (stability) only
  over values ≥ 0. A candidate without stability gets the published fallback
  sigmoid(0.6 z(vds) − 0.2 |z(ppl)|), counted in the report.
- ``quality_score``: the published weighted sum (0.28 σ(z vds + z diversity), 0.18 stability, 0.14
  exp(−|z ppl|), 0.12 exp(−|z amm|), 0.12 temporal, 0.10 coverage, 0.06 hardness).
"""

from __future__ import annotations

import warnings

import numpy as np

from gdo_opt.descriptors.published import FEATURE_TAIL

DEFAULT_K = 4096
BATCH = 8192


def zero_nan(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.isfinite(x), x, 0.0)


def features(pub_feat: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
    """[n, 27] float32 clustering features (NaN and inf -> 0)."""
    tail = np.stack([zero_nan(columns[c]) for c in FEATURE_TAIL], axis=1)
    return np.concatenate([zero_nan(pub_feat), tail], axis=1).astype(np.float32)


def kmeans(x: np.ndarray, k: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Streamed MiniBatchKMeans as published -> (label, distance to own centre, k)."""
    from sklearn.cluster import MiniBatchKMeans

    n = len(x)
    if n < 2:
        return np.full(n, -1, np.int64), np.full(n, np.nan), 0
    k = min(max(2, int(k or DEFAULT_K)), n)
    model = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=BATCH, n_init=3, reassignment_ratio=0.01)
    with warnings.catch_warnings():  # k close to n: sklearn warns about duplicate points; expected here
        warnings.simplefilter("ignore")
        model.partial_fit(x[:k])
        for start in range(k, n, BATCH):
            model.partial_fit(x[start:start + BATCH])
        labels = model.predict(x).astype(np.int64)
    dist = np.linalg.norm(x - model.cluster_centers_[labels], axis=1).astype(np.float64)
    return labels, dist, k


def center_scale(values: np.ndarray) -> tuple[float, float]:
    """Published robust statistics: (median, max(IQR, 1e-6) / 1.349)."""
    if values.size == 0:
        return 0.0, 1.0
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return float(q50), float(max(q75 - q25, 1e-6) / 1.349)


def z(values: np.ndarray, stat: tuple[float, float]) -> np.ndarray:
    return (values - stat[0]) / max(stat[1], 1e-6)


def sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


def quality(columns: dict[str, np.ndarray], coverage: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict, int]:
    """(quality_score, stability with the published fallback, the scales used, fallback count)."""
    vds, ppl = zero_nan(columns["vds"]), zero_nan(columns["ppl"])
    amm, div = zero_nan(columns["amm"]), zero_nan(columns["frame_diversity"])
    sc_raw = np.asarray(columns["stability"], dtype=np.float64)
    has_sc = np.isfinite(sc_raw) & (sc_raw >= 0)
    stats = {name: center_scale(v) for name, v in (("vds", vds), ("ppl", ppl), ("amm", amm),
                                                   ("frame_diversity", div))}
    stats["stability"] = center_scale(sc_raw[has_sc]) if has_sc.any() else (0.5, 0.2)
    fallback = sigmoid(0.6 * z(vds, stats["vds"]) - 0.2 * np.abs(z(ppl, stats["ppl"])))
    sc = np.where(has_sc, sc_raw, fallback)
    cov = zero_nan(coverage)
    score = (0.28 * sigmoid(z(vds, stats["vds"]) + z(div, stats["frame_diversity"])) + 0.18 * sc
             + 0.14 * np.exp(-np.abs(z(ppl, stats["ppl"]))) + 0.12 * np.exp(-np.abs(z(amm, stats["amm"])))
             + 0.12 * zero_nan(columns["temporal_prob"]) + 0.10 * cov + 0.06 * (1.0 - cov))
    return score, sc, stats, int((~has_sc).sum())


def published_z(values: np.ndarray) -> np.ndarray:
    """z of one column with the published scale (statistics over values with NaN counted as 0);
    NaN stays NaN in the output, so a missing value is not mistaken for the median."""
    x = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(x), z(x, center_scale(zero_nan(x))), np.nan)
