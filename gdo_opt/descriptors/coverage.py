"""coverage: one feature vector per candidate; clustering and scores happen in ``gdo-opt merge``.

Why split: MiniBatchKMeans must see the whole pool, not one rank's shard, so extraction writes only
the features and merge fits the clusters.

``published`` (default): ``pub_feat`` = 16 hashed word-count bins of question + answer and the RGB
mean / std of 6 of the 32 model frames (22 float32); merge appends temporal need, AMM, frame
diversity, PPL and VDS and clusters the 27-dim vectors (k = 4096 capped by n), coverage = exp(−d).
``hidden``: ``feat`` = hidden states of the with-media pass, mean-pooled over prompt + answer and
randomly projected to 256 dims (free: same pass as VDS; semantic rather than colour statistics).
``hashed``: ``feat`` = sklearn HashingVectorizer over question + answer + media kind, no model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import ExtractContext, ModeDescriptor, register
from gdo_opt.descriptors.media import rgb_task
from gdo_opt.descriptors.model_free import FEATURE_DIM, hashed_features
from gdo_opt.descriptors.published import normalize_texts, text_features

MEMO_MAX = 200_000


@register
class Coverage(ModeDescriptor):
    name = "coverage"
    columns = ("feat",)
    needs_model = True
    mode_option = "coverage_mode"
    modes = ("published", "hidden", "hashed")
    model_modes = ("hidden",)
    mode_passes = {"hidden": ("features",)}
    uses_pool = True

    def __init__(self) -> None:
        self._pending: tuple[tuple[str, ...], dict] | None = None
        self._memo: dict[tuple, tuple[np.ndarray, str]] = {}

    def columns_for(self, options: dict) -> tuple[str, ...]:
        return ("pub_feat",) if self.mode(options) == "published" else ("feat",)

    @staticmethod
    def _keys(batch: pd.DataFrame, ctx: ExtractContext) -> list[tuple]:
        frames = int(ctx.options.get("frames", 32))
        sub = min(int(ctx.options.get("motion_frames", 8)), 6)
        first = ctx.options.get("image_frames", "first") == "first"
        return [(tuple(str(m) for m in (media if media is not None else [])), str(kind), frames, sub, first)
                for media, kind in zip(batch["media"], batch["media_kind"])]

    def prefetch(self, batch: pd.DataFrame, ctx: ExtractContext) -> None:
        if ctx.pool is not None and self.mode(ctx.options) == "published":
            todo = dict.fromkeys(k for k in self._keys(batch, ctx) if k not in self._memo)
            self._pending = (tuple(batch["qa_uid"]), {k: ctx.pool.submit(rgb_task, list(k[0]), *k[1:]) for k in todo})

    def _rgb(self, batch: pd.DataFrame, ctx: ExtractContext) -> np.ndarray:
        keys = self._keys(batch, ctx)
        if self._pending is not None and self._pending[0] == tuple(batch["qa_uid"]):
            found = {k: f.result() for k, f in self._pending[1].items()}
        else:
            found = {k: rgb_task(list(k[0]), *k[1:]) for k in dict.fromkeys(keys) if k not in self._memo}
        self._pending = None
        if len(self._memo) + len(found) > MEMO_MAX:
            self._memo.clear()
        self._memo.update(found)
        out = np.stack([self._memo[k][0] for k in keys]) if keys else np.zeros((0, 6), np.float32)
        for uid, k in zip(batch["qa_uid"].astype(str), keys):
            if self._memo[k][1]:
                ctx.add_error(uid, self.name, self._memo[k][1])
        return out

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        mode = self.mode(ctx.options)
        if mode == "hashed":
            return {"feat": hashed_features(batch)}
        if mode == "published":
            q, a = batch["question"], batch["answer"]
            if ctx.options.get("text_norm", "published") == "published":
                q, a = normalize_texts(q), normalize_texts(a)
            return {"pub_feat": np.concatenate([text_features(q, a), self._rgb(batch, ctx)], axis=1)}
        feats = ctx.engine.results(batch, ctx.errors)["feat"]
        assert feats.shape[1] == FEATURE_DIM
        return {"feat": feats}
