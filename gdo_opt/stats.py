"""Robust standardization, the one definition shared by the descriptor table (``z_*`` columns of
``gdo-opt merge``) and the goal score ρ, so "z of a descriptor" means one thing everywhere."""

from __future__ import annotations

import numpy as np


def _r(x: float) -> float:
    return float(f"{float(x):.6g}")


def robust_z(values: np.ndarray, clip: float = 5.0) -> tuple[np.ndarray, dict]:
    """(x − median) / (IQR / 1.349) over the finite values, clipped to [−clip, clip] (clip > 0).

    The scale falls back to the standard deviation, then to 1, so a constant column gives 0.
    Non-finite inputs (NaN, ±inf) come out NaN: a missing measurement, never an extreme one.
    Returns the z values and ``{"median", "scale"}`` (None when nothing is finite).
    """
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    out = np.full_like(x, np.nan)
    if not finite.any():
        return out, {"median": None, "scale": None}
    q1, median, q3 = np.percentile(x[finite], [25, 50, 75])
    scale = (q3 - q1) / 1.349
    if not scale > 0:
        scale = float(x[finite].std())
    if not scale > 0:
        scale = 1.0
    z = (x[finite] - median) / scale
    out[finite] = np.clip(z, -clip, clip) if clip > 0 else z
    return out, {"median": _r(median), "scale": _r(scale)}
