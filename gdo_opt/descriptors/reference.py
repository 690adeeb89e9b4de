"""The one-at-a-time reference path: an independent check of the engine and the benchmark baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gdo_opt.descriptors.model import DEFAULT_OPTIONS, VLProcessor, prepare_sample
from gdo_opt.descriptors.sampling import KeyedGumbelSampler, row_key


def reference_descriptors(row: dict, model, proc: VLProcessor, options: dict | None = None) -> dict[str, Any]:
    """One candidate at a time, the way the published GDO code does it: two full forward passes with
    HF's own loss, a generate call for temporal need (parsed), k separate sampled generations.
    Used by the tests (independent check of the batched losses) and as the benchmark baseline."""
    opts = {**DEFAULT_OPTIONS, **(options or {})}
    sample = prepare_sample(row, proc, opts)
    device = next(model.parameters()).device
    result: dict[str, Any] = {}
    with torch.inference_mode():
        for name, prompt, media in (("loss_video", sample.prompt, True), ("loss_blind", sample.blind, False)):
            ids = torch.tensor([prompt + sample.answer], device=device)
            labels = ids.clone()
            labels[:, : len(prompt)] = -100
            kwargs = {"input_ids": ids, "labels": labels}
            if media:
                kwargs.update(pixel_values=sample.pixels.to(device, model.dtype), image_grid_thw=sample.grids.to(device))
                kwargs["mm_token_type_ids"] = (ids == proc.image_token_id).long()
            result[name] = float(model(**kwargs).loss.double())
        media_kwargs = {
            "pixel_values": sample.pixels.to(device, model.dtype),
            "image_grid_thw": sample.grids.to(device),
        }
        probe_ids = torch.tensor([sample.prompt + sample.answer + proc.probe_suffix], device=device)
        text = model.generate(
            input_ids=probe_ids, mm_token_type_ids=(probe_ids == proc.image_token_id).long(), **media_kwargs,
            do_sample=False, max_new_tokens=4, pad_token_id=proc.pad_id,
        )
        answer = proc.tokenizer.decode(text[0, probe_ids.shape[1]:], skip_special_tokens=True)
        result["temporal_text"] = answer
        prompt_ids = torch.tensor([sample.prompt], device=device)
        sets = []
        for j in range(int(opts["stability_k"])):
            out = model.generate(
                input_ids=prompt_ids, mm_token_type_ids=(prompt_ids == proc.image_token_id).long(),
                **media_kwargs, do_sample=True, max_new_tokens=int(opts["max_new_tokens"]),
                temperature=float(opts["temperature"]), top_k=int(opts["top_k"]), top_p=float(opts["top_p"]),
                logits_processor=[KeyedGumbelSampler([row_key(int(opts["seed"]), sample.uid, j)], prompt_ids.shape[1])],
                pad_token_id=proc.pad_id, eos_token_id=proc.eos_ids,
            )
            tokens = []
            for t in out[0, prompt_ids.shape[1]:].tolist():
                if t in proc.eos_ids:
                    break
                if t != proc.pad_id:
                    tokens.append(t)
            sets.append(set(tokens))
        pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
        result["stability"] = float(np.mean([len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs]))
    result["vds"] = result["loss_blind"] - result["loss_video"]
    result["ppl"] = float(np.exp(result["loss_video"]))
    return result
