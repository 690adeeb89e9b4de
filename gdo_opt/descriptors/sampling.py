"""Keyed sampling and the stability score: a Gumbel-max sampler whose noise is hashed from
(candidate, sample index, step, token), and the mean pairwise Jaccard of the sampled token sets."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def row_key(seed: int, uid: str, j: int) -> int:
    """Stable signed 63-bit key of (seed, candidate, sample index) for the sampler."""
    digest = hashlib.blake2b(f"{seed}|{uid}|{j}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


_M64 = (1 << 64) - 1


def _signed(value: int) -> int:
    value &= _M64
    return value - (1 << 64) if value >= 1 << 63 else value


_C1, _C2, _C3 = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB), _signed(0x9E3779B97F4A7C15)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64 finaliser on int64 tensors (logical shifts emulated with masks)."""
    x = x ^ ((x >> 30) & ((1 << 34) - 1))
    x = x * _C1
    x = x ^ ((x >> 27) & ((1 << 37) - 1))
    x = x * _C2
    return x ^ ((x >> 31) & ((1 << 33) - 1))


class KeyedGumbelSampler:
    """Logits processor that turns sampling into argmax(logits + Gumbel noise) with noise hashed from
    (candidate, sample index, step, token): each candidate's k samples are identical whatever batch,
    rank or padding it lands in, so sharded, resumed and one-at-a-time runs agree. It runs after the
    temperature / top-k / top-p warpers and returns a one-hot score, so ``do_sample`` picks it."""

    def __init__(self, keys: list[int], prompt_len: int):
        self.keys = torch.tensor(keys, dtype=torch.int64)
        self.prompt_len = prompt_len
        self._vocab: torch.Tensor | None = None  # token term of the hash, built once per device / vocab

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_len
        if self._vocab is None or self._vocab.shape[1] != scores.shape[1] or self._vocab.device != scores.device:
            self.keys = self.keys.to(scores.device)
            self._vocab = torch.arange(scores.shape[1], device=scores.device, dtype=torch.int64)[None, :] * _C3
        x = _mix(_mix(self.keys * _C3 + step)[:, None] + self._vocab)
        u = ((x >> 11) & ((1 << 53) - 1)).to(torch.float64) * 2.0**-53 + 2.0**-54
        noisy = scores.double() - torch.log(-torch.log(u))
        pick = noisy.argmax(dim=1, keepdim=True)
        out = torch.full_like(scores, -float("inf"))
        return out.scatter_(1, pick, 0.0)


def pairwise_jaccard(tokens: torch.Tensor, valid: torch.Tensor, k: int) -> np.ndarray:
    """Mean pairwise Jaccard of token sets; ``tokens``/``valid`` are [B*k, T], rows grouped by sample."""
    rows = tokens.shape[0]
    _, inverse = torch.unique(tokens, return_inverse=True)
    width = int(inverse.max().item()) + 1 if inverse.numel() else 1
    presence = torch.zeros(rows, width + 1, dtype=torch.float64, device=tokens.device)
    presence.scatter_(1, torch.where(valid, inverse, width), 1.0)
    presence = presence[:, :width].view(rows // k, k, width)
    inter = presence @ presence.transpose(1, 2)
    size = presence.sum(-1)
    union = size[:, :, None] + size[:, None, :] - inter
    jac = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
    iu = torch.triu_indices(k, k, offset=1)
    return jac[:, iu[0], iu[1]].mean(-1).double().cpu().numpy()

