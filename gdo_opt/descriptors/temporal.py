"""temporal: does answering the question need temporal information?

``prompt`` (published, default): the model answers, greedily in 3 tokens, the question-only prompt
"Decide if the question requires temporal reasoning over multiple frames. Answer only one word:
Temporal or Static. Question: …" (no media) -> 1.0 / 0.0 / 0.5 when neither word appears. Once per
distinct question (gdo_opt.descriptors.published). ``probe``: "… Answer with one word: Temporal or
Static." is appended after the answer in the with-media pass and P = softmax over the next-token logits
of the two words: no generation and no extra pass, sees the media, and gives a graded value instead of
three levels. ``regex``: 1.0 when the candidate table's regex cue says ``temporal``, no model.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import ExtractContext, ModeDescriptor, register
from gdo_opt.ingest.schema import TEMPORAL_RE

# Fallback cue when the candidate table has no `temporal_category` column: the ingest's own regex
# (gdo_opt.ingest.schema.TEMPORAL_RE), so the fallback and the table always agree.
TEMPORAL_CUE = re.compile(TEMPORAL_RE, re.IGNORECASE)


@register
class TemporalNeed(ModeDescriptor):
    name = "temporal"
    columns = ("temporal_prob",)
    needs_model = True
    mode_option = "temporal_mode"
    modes = ("prompt", "probe", "regex")
    model_modes = ("prompt", "probe")
    mode_passes = {"prompt": ("temporal",), "probe": ("probe",)}

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        if self.mode(ctx.options) == "regex":
            if "temporal_category" in batch.columns:
                cue = batch["temporal_category"].astype(str).str.lower().eq("temporal")
            else:
                cue = batch["question"].astype(str).str.contains(TEMPORAL_CUE)
            return {"temporal_prob": cue.to_numpy(dtype=np.float64)}
        return {"temporal_prob": ctx.engine.results(batch, ctx.errors)["temporal_prob"]}
