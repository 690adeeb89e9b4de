"""temporal: P("Temporal") from the next-token logits of a probe question, or the regex cue.

Model mode appends "... Answer with one word: Temporal or Static." after the answer in the
with-media pass (causal attention leaves the answer loss unchanged) and compares the logits of the
first token of each word: no generation, no parsing, and no extra forward pass. Regex mode
(``temporal_mode=regex``) is free: 1.0 when the candidate table's regex cue says ``temporal``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import ExtractContext, ModeDescriptor, register

# Fallback cue when the candidate table has no `temporal_category` column.
TEMPORAL_CUE = re.compile(
    r"\b(before|after|first|then|next|last|order|sequence|happen\w*|mov\w*|motion|direction|speed|fast|slow\w*"
    r"|chang\w*|during|while|begin\w*|start\w*|end|finally|later|earlier|toward\w*|left|right)\b",
    re.IGNORECASE,
)


@register
class TemporalNeed(ModeDescriptor):
    name = "temporal"
    columns = ("temporal_prob",)
    needs_model = True
    passes = ("probe",)
    mode_option = "temporal_mode"
    modes = ("model", "regex")

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        if self.mode(ctx.options) == "regex":
            if "temporal_category" in batch.columns:
                cue = batch["temporal_category"].astype(str).str.lower().eq("temporal")
            else:
                cue = batch["question"].astype(str).str.contains(TEMPORAL_CUE)
            return {"temporal_prob": cue.to_numpy(dtype=np.float64)}
        return {"temporal_prob": ctx.engine.results(batch, ctx.errors)["temporal_prob"]}
