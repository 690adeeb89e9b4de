"""stability: self-consistency of k sampled answers = mean pairwise token-set Jaccard.

One batched ``generate(do_sample=True, num_return_sequences=k)`` per micro-batch. Sampling uses a
keyed Gumbel-max sampler (gdo_opt.descriptors.sampling.KeyedGumbelSampler), so a candidate's k answers
are the same whatever batch, rank or restart computes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import Descriptor, ExtractContext, register


@register
class Stability(Descriptor):
    name = "stability"
    columns = ("stability",)
    needs_model = True
    passes = ("generate",)

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        return {"stability": ctx.engine.results(batch, ctx.errors)["stability"]}
