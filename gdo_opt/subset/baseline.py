"""The Uni-kx baseline: a seeded uniform sample of k×K rows under the same dedup and per-video caps.

GDO's claim is "1x chosen beats 10x random"; the random arm must obey the same hygiene rules
(no duplicates, no video flooding) or the comparison flatters the optimizer.
"""

from __future__ import annotations

import numpy as np

from gdo_opt.goal.hygiene import hygiene_keep


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
    keep = hygiene_keep(n, None if dedup is None else dedup[order],
                        None if video_uid is None else video_uid[order], cap)
    eligible = order[keep]
    info = {"requested": int(size), "eligible": int(eligible.size), "seed": int(seed)}
    if size > eligible.size:
        info["note"] = f"requested {size} rows but dedup and caps leave {eligible.size}; took them all"
    chosen = np.sort(eligible[:size]).astype(np.int64)
    info["size"] = int(chosen.size)
    return chosen, info
