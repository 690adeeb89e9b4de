"""motion: mean Farneback optical-flow magnitude (AMM) and mean absolute frame difference.

CPU only: the runner's process pool computes it while the model works on the same chunk
(``prefetch`` submits, ``compute`` collects). Images score 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import Descriptor, ExtractContext, register
from gdo_opt.descriptors.media import motion_task


@register
class Motion(Descriptor):
    name = "motion"
    columns = ("amm", "frame_diversity")
    needs_model = False

    def __init__(self) -> None:
        self._pending: tuple[tuple[str, ...], list] | None = None

    @staticmethod
    def _args(batch: pd.DataFrame, ctx: ExtractContext):
        k = int(ctx.options.get("motion_frames", 8))
        for media, kind in zip(batch["media"], batch["media_kind"]):
            yield [str(m) for m in (media if media is not None else [])], str(kind), k

    def prefetch(self, batch: pd.DataFrame, ctx: ExtractContext) -> None:
        if ctx.pool is not None:
            futures = [ctx.pool.submit(motion_task, *args) for args in self._args(batch, ctx)]
            self._pending = (tuple(batch["qa_uid"]), futures)

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        uids = tuple(batch["qa_uid"])
        if self._pending is not None and self._pending[0] == uids:
            results = [f.result() for f in self._pending[1]]
        else:
            results = [motion_task(*args) for args in self._args(batch, ctx)]
        self._pending = None
        for uid, (_, _, error) in zip(uids, results):
            if error:
                ctx.add_error(uid, self.name, error)
        return {
            "amm": np.array([r[0] for r in results], dtype=np.float64),
            "frame_diversity": np.array([r[1] for r in results], dtype=np.float64),
        }
