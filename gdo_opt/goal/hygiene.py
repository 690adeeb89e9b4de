"""Dedup and the per-video cap as a row mask: which rows can be taken together, in a given order.

One definition for the two places that need it: the goal's constraint derivation (how many rows
any feasible subset can reach, so quotas and budgets stay attainable) and the Uni-kx baseline (a
random sample under the same hygiene rules).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def hygiene_keep(n: int, dedup: np.ndarray | None = None, video_uid: np.ndarray | None = None,
                 cap: int | None = None) -> np.ndarray:
    """Bool mask over ``n`` rows taken in array order: the first row of each dedup key, then among
    those the first ``cap`` rows of each video (``video_uid`` codes, -1 = no video, never capped)."""
    keep = np.ones(n, dtype=bool)
    if dedup is not None:
        keep &= ~pd.Series(dedup).duplicated().to_numpy()
    if cap is not None and video_uid is not None:
        uid = np.where(keep, video_uid, -1)
        rank = pd.Series(uid).groupby(uid).cumcount().to_numpy()
        keep &= (uid < 0) | (rank < cap)
    return keep
