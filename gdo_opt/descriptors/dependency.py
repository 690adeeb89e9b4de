"""dependency (VDS) and difficulty (PPL): both read the teacher-forced answer loss of the engine.

VDS = loss_blind - loss_video: how much the media lowers the answer loss (high = the answer really
needs the video). PPL = exp(loss_video): how hard the answer is even with the media. Difficulty
adds no pass of its own: it reads the same with-media forward pass as VDS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import Descriptor, ExtractContext, register


def _engine_results(batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
    return ctx.engine.results(batch, ctx.errors)


@register
class VideoDependency(Descriptor):
    name = "dependency"
    columns = ("loss_video", "loss_blind", "vds")
    needs_model = True
    passes = ("media", "blind")

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        r = _engine_results(batch, ctx)
        return {"loss_video": r["loss_video"], "loss_blind": r["loss_blind"], "vds": r["loss_blind"] - r["loss_video"]}


@register
class Difficulty(Descriptor):
    name = "difficulty"
    columns = ("loss_video", "ppl")
    needs_model = True
    passes = ("media",)

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        r = _engine_results(batch, ctx)
        # exp of the loss clipped to [-30, 30], as published (no overflow on a diverging proxy).
        return {"loss_video": r["loss_video"], "ppl": np.exp(np.clip(r["loss_video"], -30.0, 30.0))}
