"""Grouped vision attention: the engine's vision-tower calls run many images per SDPA call."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

GROUPED_ATTENTION = "flash_gdo_grouped_sdpa"


def grouped_varlen_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0,
                             cu_seq_lens_q=None, is_causal=False, **kwargs):
    """Packed vision attention for many images in one call: images with the same patch count are stacked
    into one [n, heads, L, d] SDPA, instead of HF's SDPA fallback that loops over the images in Python.

    Registered under a name containing "flash" because the Qwen-VL vision towers hand ``cu_seq_lens_q``
    (the per-image boundaries) only to flash-style kernels; the maths is plain bidirectional SDPA per image.
    Inputs are [1, heads, tokens, d]; the output is [1, tokens, heads, d], as the flash kernels return."""
    q, k, v = query[0], key[0], value[0]
    bounds = cu_seq_lens_q.tolist()
    groups: dict[int, list[int]] = {}
    for start, end in zip(bounds[:-1], bounds[1:]):
        groups.setdefault(end - start, []).append(start)
    out = torch.empty_like(q)
    for length, starts in groups.items():
        idx = (torch.tensor(starts, device=q.device)[:, None]
               + torch.arange(length, device=q.device)[None, :]).reshape(-1)
        shape = (q.shape[0], len(starts), length, q.shape[-1])  # heads, images, patches, head dim
        qs, ks, vs = (t[:, idx].reshape(shape).transpose(0, 1) for t in (q, k, v))
        o = F.scaled_dot_product_attention(qs, ks, vs, scale=scaling)
        out[:, idx] = o.transpose(0, 1).reshape(shape[0], -1, shape[3])
    return out.transpose(0, 1).unsqueeze(0), None


def vision_attention(model):
    """Context: the vision tower uses ``grouped_varlen_attention`` (restored afterwards, so other
    users of the model, e.g. the one-at-a-time reference, keep HF's own path)."""
    visual = getattr(model.model, "visual", None)
    config = getattr(visual, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return contextlib.nullcontext()
    from transformers import AttentionInterface

    AttentionInterface.register(GROUPED_ATTENTION, grouped_varlen_attention)

    @contextlib.contextmanager
    def swap():
        old = config._attn_implementation
        config._attn_implementation = GROUPED_ATTENTION
        try:
            yield
        finally:
            config._attn_implementation = old

    return swap()
