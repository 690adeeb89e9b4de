"""The shared score ρ(x): a weighted, signed sum of normalized descriptors, vectorized over the pool.

Normalizing over the pool (robust z by default) puts descriptors with different units on one scale
and keeps a few extreme values from dominating; clipping bounds each term's influence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gdo_opt.errors import GdoError
from gdo_opt.goal.metrics import Metrics
from gdo_opt.goal.preset import ScoreSpec, Term
from gdo_opt.stats import robust_z


@dataclass
class ScoreResult:
    rho: np.ndarray  # float64, one per candidate (penalty applied to missing ones)
    missing: np.ndarray  # bool: no usable descriptor value for any active term
    terms: list[Term]  # terms that entered ρ
    dropped: dict[str, str] = field(default_factory=dict)  # descriptor -> why it was dropped
    normalized: dict[str, np.ndarray] = field(default_factory=dict)  # per-term normalized values
    stats: dict[str, dict] = field(default_factory=dict)  # per-term centre / scale used

    def summary(self, policy: str, penalty: float) -> dict:
        return {
            "terms": [
                {"descriptor": t.descriptor, "weight": t.weight, "sign": t.sign, "transform": t.transform,
                 **self.stats.get(t.descriptor, {})}
                for t in self.terms
            ],
            "dropped_terms": dict(sorted(self.dropped.items())),
            "missing_policy": policy,
            "missing_penalty": penalty if policy == "penalty" else None,
            "missing_candidates": int(self.missing.sum()),
        }


def _transform(values: np.ndarray, how: str, name: str) -> np.ndarray:
    if how == "none":
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        if how == "log":
            out = np.log(values)
        elif how == "log1p":
            out = np.log1p(values)
        else:  # pragma: no cover - the preset loader rejects other names
            raise GdoError(f"score term {name}: unknown transform {how!r}")
    out[~np.isfinite(out)] = np.nan  # log of <= 0 is treated as missing, not as -inf
    return out


def rank_normalize(values: np.ndarray, clip: float) -> tuple[np.ndarray, dict]:
    """Mid-rank percentile mapped to [−1, 1]; ties share a rank so the result is order-independent."""
    out = np.full_like(values, np.nan)
    ok = np.isfinite(values)
    n = int(ok.sum())
    if n:
        from scipy.stats import rankdata  # lazy: scipy.stats costs ~2 s of start-up

        out[ok] = (rankdata(values[ok], method="average") - 0.5) / n * 2.0 - 1.0
    return out, {"median": None, "scale": None}


def compute_score(metrics: Metrics, spec: ScoreSpec, n: int, ablate: tuple[str, ...] = ()) -> ScoreResult:
    """ρ for ``n`` candidates from aligned ``metrics`` under ``spec`` (``ablate``: extra descriptors to drop)."""
    rho = np.zeros(n)
    seen = np.zeros(n, dtype=bool)
    used: list[Term] = []
    dropped: dict[str, str] = {}
    normalized: dict[str, np.ndarray] = {}
    stats: dict[str, dict] = {}
    for term in spec.active_terms():
        if term.descriptor in ablate:
            dropped[term.descriptor] = "ablated on the command line"
            continue
        raw = metrics.values.get(term.descriptor)
        if raw is None or not np.isfinite(raw).any():
            why = "not in the metrics" if raw is None else "no finite value in the metrics"
            if term.required:
                raise GdoError(f"score term {term.descriptor}: required by the preset but {why}")
            dropped[term.descriptor] = why
            continue
        values = _transform(raw.astype(np.float64, copy=True), term.transform, term.descriptor)
        if spec.normalization == "robust_z":
            z, stat = robust_z(values, spec.clip)
        elif spec.normalization == "rank":
            z, stat = rank_normalize(values, spec.clip)
        else:
            z = np.clip(values, -spec.clip, spec.clip) if spec.clip > 0 else values
            stat = {"median": None, "scale": None}
        ok = np.isfinite(z)
        seen |= ok
        rho += np.where(ok, term.sign * term.weight * z, 0.0)  # partial rows: missing term = median (0)
        used.append(term)
        normalized[term.descriptor] = z
        stats[term.descriptor] = {**stat, "available": int(ok.sum())}
    missing = ~seen
    if used and spec.missing == "penalty":
        rho[missing] = spec.missing_penalty
    if not used:
        reasons = "; ".join(f"{d}: {why}" for d, why in sorted(dropped.items()))
        raise GdoError(f"score: no term of the preset has data ({reasons}); give metrics with these columns")
    return ScoreResult(rho=rho, missing=missing, terms=used, dropped=dropped, normalized=normalized, stats=stats)
