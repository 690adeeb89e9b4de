"""The Uni-kx baseline: a seeded uniform sample of k×K rows under the same dedup and per-video caps.

GDO's claim is "1x chosen beats 10x random"; the random arm must obey the same hygiene rules
(no duplicates, no video flooding) or the comparison flatters the optimizer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def uniform_baseline(
    n: int,
    size: int,
    seed: int,
    dedup: np.ndarray | None = None,  # dedup-key codes (any hashable dtype)
    video_uid: np.ndarray | None = None,  # int64 video codes, -1 for rows without a video
    cap: int | None = None,
) -> tuple[np.ndarray, dict]:
    """Sorted indices of a uniform sample of ``size`` rows (fewer if dedup/caps leave fewer) + info.

    Vectorized: one random permutation; the first occurrence of each dedup key and the first
    ``cap`` rows of each video in permutation order are eligible; the first ``size`` eligible win.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    keep = np.ones(n, dtype=bool)
    if dedup is not None:
        keep &= ~pd.Series(dedup[order]).duplicated().to_numpy()
    if cap is not None and video_uid is not None:
        uid = np.where(keep, video_uid[order], -1)  # integer codes, -1 = no video
        rank = pd.Series(uid).groupby(uid).cumcount().to_numpy()
        keep &= (uid < 0) | (rank < cap)
    eligible = order[keep]
    info = {"requested": int(size), "eligible": int(eligible.size), "seed": int(seed)}
    if size > eligible.size:
        info["note"] = f"requested {size} rows but dedup and caps leave {eligible.size}; took them all"
    chosen = np.sort(eligible[:size]).astype(np.int64)
    info["size"] = int(chosen.size)
    return chosen, info
