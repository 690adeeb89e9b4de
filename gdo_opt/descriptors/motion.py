"""motion: mean Farneback optical-flow magnitude (AMM) and mean absolute frame difference.

``motion = published`` (default): ``motion_frames`` (8) of the ``frames`` (32) model frames, 224x224
gray, Farneback levels / iterations 2 / 2 (gdo_opt.descriptors.media.motion_published); ``fast``: up
to 8 frames at 160 px wide, 3 / 3.

CPU only: the runner's process pool computes it while the model works on the same chunk
(``prefetch`` submits, ``compute`` collects). Images score 0 without decoding anything. The turns of
one clip share its media, so each distinct clip is computed once per process (a memo keyed by the
media paths, the kind and the frame count; values depend only on those, so resume and sharding give
the same table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import Descriptor, ExtractContext, register
from gdo_opt.descriptors.media import motion_task

MEMO_MAX = 200_000  # clips remembered per process (three small values each)


@register
class Motion(Descriptor):
    name = "motion"
    columns = ("amm", "frame_diversity")
    needs_model = False

    def __init__(self) -> None:
        self._pending: tuple[tuple[str, ...], dict] | None = None
        self._memo: dict[tuple, tuple[float, float, str]] = {}

    @staticmethod
    def _keys(batch: pd.DataFrame, ctx: ExtractContext) -> list[tuple]:
        k = int(ctx.options.get("motion_frames", 8))
        variant, frames = str(ctx.options.get("motion", "published")), int(ctx.options.get("frames", 32))
        return [(tuple(str(m) for m in (media if media is not None else [])), str(kind), k, variant, frames)
                for media, kind in zip(batch["media"], batch["media_kind"])]

    def _todo(self, keys: list[tuple]) -> list[tuple]:
        """Distinct clips of the chunk that are not memoized yet (images need no work)."""
        return list(dict.fromkeys(key for key in keys if key[1] != "image" and key not in self._memo))

    def prefetch(self, batch: pd.DataFrame, ctx: ExtractContext) -> None:
        if ctx.pool is not None:
            futures = {key: ctx.pool.submit(motion_task, list(key[0]), *key[1:])
                       for key in self._todo(self._keys(batch, ctx))}
            self._pending = (tuple(batch["qa_uid"]), futures)

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        uids = tuple(batch["qa_uid"])
        keys = self._keys(batch, ctx)
        if self._pending is not None and self._pending[0] == uids:
            found = {key: future.result() for key, future in self._pending[1].items()}
        else:
            found = {key: motion_task(list(key[0]), *key[1:]) for key in self._todo(keys)}
        self._pending = None
        results = [(0.0, 0.0, "") if key[1] == "image" else found.get(key) or self._memo[key] for key in keys]
        if len(self._memo) + len(found) > MEMO_MAX:
            self._memo.clear()
        self._memo.update(found)
        for uid, (_, _, error) in zip(uids, results):
            if error:
                ctx.add_error(uid, self.name, error)
        return {
            "amm": np.array([r[0] for r in results], dtype=np.float64),
            "frame_diversity": np.array([r[1] for r in results], dtype=np.float64),
        }
