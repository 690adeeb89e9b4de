"""The Uni-kx baseline: a seeded uniform sample of k×K rows under the same dedup and per-video caps.

GDO's claim is "1x chosen beats 10x random"; the random arm must obey the same hygiene rules
(no duplicates, no video flooding) or the comparison flatters the optimizer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

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


def published_uniform(pool, size: int, cap: int, seed: int, oversample: float = 1.35) -> tuple[np.ndarray, dict]:
    """Uni-kx as the published builder builds it, reaching ``size`` rows whenever the pool has them.

    A reservoir of ceil(1.35·size) rows drawn uniformly (a seeded order keyed on qa_uid, so the
    input's row order does not matter), then three passes in that order: (1) exact-text dedup and
    at most ``cap`` rows per video; (2) the per-video cap only; (3) any reservoir row left. Each
    pass fills only what the previous left; the report says how many rows each pass took.
    """
    n = pool.n
    key = f"{int(seed) % 10**16:016d}"
    uids = pool.qa_uid if isinstance(pool.qa_uid, pa.Array) else pa.array(np.asarray(pool.qa_uid, dtype=object))
    step = 1 << 14  # Python strings (and the hasher's bytes copies) for one slice at a time: ~3 MB
    hashed = [pd.util.hash_array(uids.slice(a, step).to_numpy(zero_copy_only=False), hash_key=key)
              for a in range(0, n, step)]
    order = np.lexsort((np.arange(n), np.concatenate(hashed) if hashed else np.zeros(0, np.uint64)))
    reservoir = order[: min(n, max(size, int(np.ceil(size * max(1.0, oversample)))))]
    vid = pool.video_uid[reservoir]
    taken = np.zeros(reservoir.size, dtype=bool)

    def capped(ok: np.ndarray) -> np.ndarray:
        """Rows of ``ok`` (in order) whose video still has room after the rows already taken."""
        uid = np.where(ok, vid, -1)
        rank = pd.Series(uid).groupby(uid).cumcount().to_numpy()
        held = np.bincount(vid[taken & (vid >= 0)], minlength=max(int(vid.max(initial=-1)) + 1, 1))
        return ok & ((uid < 0) | (rank + held[np.maximum(uid, 0)] < cap))

    passes = {}
    first_text = ~pd.Series(pool.text_key[reservoir]).duplicated().to_numpy()
    for name, ok in (("dedup_and_cap", first_text), ("cap_only", np.ones(reservoir.size, dtype=bool)),
                     ("any", None)):
        room = size - int(taken.sum())
        if room <= 0:
            passes[name] = 0
            continue
        new = ~taken if ok is None else capped(ok & ~taken)
        pick = np.flatnonzero(new)[:room]
        taken[pick] = True
        passes[name] = int(pick.size)
    chosen = np.sort(reservoir[taken]).astype(np.int64)
    info = {"requested": int(size), "size": int(chosen.size), "seed": int(seed), "reservoir": int(reservoir.size),
            "rule": "published 3-pass relaxation", "passes": passes}
    if chosen.size < size:
        info["note"] = f"the pool has {n} rows, fewer than the {size} asked"
    return chosen, info
