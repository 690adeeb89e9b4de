"""coverage: one feature vector per candidate; clustering and scores happen in ``gdo-opt merge``.

Why split: MiniBatchKMeans must see the whole pool, not one rank's shard, so extraction only writes
the ``feat`` vector (256 float32) and merge fits the clusters. Model mode = hidden states of the
with-media pass, mean-pooled over prompt + answer and randomly projected to 256 dims (free: same
pass as VDS). Hashed mode = sklearn HashingVectorizer over question + answer + media kind, no model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import ExtractContext, ModeDescriptor, register
from gdo_opt.descriptors.model_free import FEATURE_DIM, hashed_features


@register
class Coverage(ModeDescriptor):
    name = "coverage"
    columns = ("feat",)
    needs_model = True
    passes = ("features",)
    mode_option = "coverage_mode"
    modes = ("model", "hashed")

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        if self.mode(ctx.options) == "hashed":
            return {"feat": hashed_features(batch)}
        feats = ctx.engine.results(batch, ctx.errors)["feat"]
        assert feats.shape[1] == FEATURE_DIM
        return {"feat": feats}
