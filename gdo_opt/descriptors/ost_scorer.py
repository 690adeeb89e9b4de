"""One-Step-Train (OST) scorer: how much one SGD step on a sample lowers a target set's loss.

utility(x) = L_val(θ) − L_val(θ − η ∇L_x(θ)), θ restricted to a parameter subset of a small proxy
model. Two estimators share the same tokenization and losses:

* ``exact``: the step is really applied with ``torch.func.functional_call`` on stacked per-sample
  parameter tensors (no model copies), and the validation loss is re-evaluated — O(N · |val|) passes.
* ``first_order``: utility ≈ η ∇L_val · ∇L_x, from per-sample gradients (``vmap(grad)``) randomly
  projected to ``proj_dim`` dimensions — O(N + |val|) passes, for large pools.

The module is model-agnostic: any Hugging Face causal LM or VLM whose forward accepts ``input_ids``
(text-only inputs; media are not fed). ``gdo_opt.descriptors.ost`` wraps it as the
``ost`` descriptor; ost_data (target set), ost_tokens (encoding) and ost_params (θ) feed it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gdo_opt.descriptors.ost_params import DEFAULT_PARAMS, select_params
from gdo_opt.descriptors.ost_tokens import Encoded
from gdo_opt.errors import GdoError

DEFAULT_LR = 1e-3
DEFAULT_PROJ_DIM = 2048
EXACT_MAX = 1000  # auto mode: exact up to this many candidates, first-order above
MODES = ("exact", "first_order", "auto")
PROJECTIONS = ("auto", "gaussian", "sketch")


def _chunks(order: np.ndarray, size: int) -> list[np.ndarray]:
    return [order[i : i + size] for i in range(0, len(order), size)]


class OstScorer:
    """OST utilities of encoded candidates against a fixed target set on one proxy model.

    Construction computes what every candidate shares (base target loss, target gradient); the
    ``exact`` / ``first_order`` methods are then independent per candidate, so shards and batches of
    any size give the same numbers.
    """

    def __init__(
        self,
        model: Any,
        val: Encoded,
        *,
        params: str = DEFAULT_PARAMS,
        lr: float = DEFAULT_LR,
        proj_dim: int = DEFAULT_PROJ_DIM,
        seed: int = 0,
        pad_id: int = 0,
        chunk_size: int = 8,
        val_chunk_size: int = 32,
        projection: str = "auto",
        proj_cache_bytes: int = 1 << 30,
    ) -> None:
        import torch

        if len(val) == 0:
            raise GdoError("OST: the target set is empty (after decontamination)")
        if not lr > 0:
            raise GdoError(f"ost_lr: {lr}: must be > 0")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.params = select_params(model, params)
        self.lr = float(lr)
        self.seed = int(seed)
        self.pad_id = int(pad_id)
        self.chunk_size = max(1, int(chunk_size))
        self.val_chunk_size = max(1, int(val_chunk_size))
        self.n_params = int(sum(p.numel() for p in self.params.values()))
        self.proj_dim = min(int(proj_dim), self.n_params) if proj_dim else self.n_params
        self.proj_cache_bytes = int(proj_cache_bytes)
        if projection not in PROJECTIONS:
            raise GdoError(f"ost_proj: {projection!r}: expected one of {', '.join(PROJECTIONS)}")
        if projection == "auto":  # a dense Gaussian only while it fits the cache (lm_head of a real LM does not)
            projection = "gaussian" if 4 * self.n_params * self.proj_dim <= self.proj_cache_bytes else "sketch"
        self.projection = projection
        self._proj_cache: dict[str, Any] = {}
        self.val = val
        self._val_batches = [self._collate(val, idx) for idx in _chunks(self._by_length(val), self.val_chunk_size)]
        with torch.no_grad():
            self.base_val_loss = float(
                sum(self._val_sum(self.params, batch).item() for batch in self._val_batches) / len(val)
            )
        self._val_grad_proj = None

    # -- batching ----------------------------------------------------------
    @staticmethod
    def _by_length(enc: Encoded) -> np.ndarray:
        """Order by length (stable) so chunks pad little; results are scattered back."""
        return np.argsort(enc.lengths, kind="stable")

    def _collate(self, enc: Encoded, idx: np.ndarray):
        """Right-padded ids, answer-only labels (-100 elsewhere) and how many logits to keep.

        Right padding needs no attention mask: real tokens never attend to later pads, positions
        stay 0..len-1, and pads carry no label — which keeps the forward vmap-friendly.
        """
        import torch

        lengths = enc.lengths[idx]
        width = int(lengths.max())
        ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        labels = np.full((len(idx), width), -100, dtype=np.int64)
        for row, i in enumerate(idx):
            seq = enc.ids[i]
            ids[row, : len(seq)] = seq
            labels[row, enc.start[i] : len(seq)] = seq[enc.start[i] :]
        keep = int(width - enc.start[idx].min() + 1)  # logits from the token before the first answer
        return (
            torch.from_numpy(ids).to(self.device),
            torch.from_numpy(labels).to(self.device),
            min(keep, width),
        )

    # -- losses ------------------------------------------------------------
    def _token_losses(self, params, ids, labels, keep):
        """Mean answer-token cross-entropy per row of ``ids`` (float32 logits)."""
        import torch
        from torch.func import functional_call

        out = functional_call(
            self.model, params, args=(), kwargs={"input_ids": ids, "use_cache": False, "logits_to_keep": keep}
        )
        logits = out.logits[:, :-1].float()
        targets = labels[:, ids.shape[1] - keep + 1 :]
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
        ).view(targets.shape)
        counts = (targets != -100).sum(dim=1).clamp(min=1)
        return losses.sum(dim=1) / counts

    def _sample_loss(self, params, ids, labels, keep):
        return self._token_losses(params, ids[None], labels[None], keep)[0]

    def _val_sum(self, params, batch):
        ids, labels, keep = batch
        return self._token_losses(params, ids, labels, keep).sum()

    def _per_sample_grads(self, batch):
        from torch.func import grad, vmap

        ids, labels, keep = batch
        return vmap(grad(self._sample_loss), in_dims=(None, 0, 0, None))(self.params, ids, labels, keep)

    # -- exact -------------------------------------------------------------
    def exact(self, enc: Encoded) -> np.ndarray:
        """Apply θ − η∇L_x per candidate (stacked, vmapped) and re-evaluate the target loss."""
        import torch
        from torch.func import vmap

        out = np.full(len(enc), np.nan)
        val_loss = vmap(self._val_sum, in_dims=(0, None))
        for idx in _chunks(self._by_length(enc), self.chunk_size):
            grads = self._per_sample_grads(self._collate(enc, idx))
            with torch.no_grad():
                stepped = {name: p[None] - self.lr * grads[name] for name, p in self.params.items()}
                del grads
                total = sum(val_loss(stepped, batch) for batch in self._val_batches)
            out[idx] = self.base_val_loss - total.double().cpu().numpy() / len(self.val)
        return out

    # -- first order -------------------------------------------------------
    def _projection(self, name: str, index: int, numel: int):
        """The projection of one parameter, seeded by (seed, parameter index) and generated on the CPU
        so CPU and CUDA runs agree. Gaussian: a dense N(0, 1/k) block, cached while the total fits
        ``proj_cache_bytes``. Sketch (CountSketch): a random bucket and sign per coordinate — unbiased
        for inner products like the Gaussian, but O(P) memory and time, so any subset size works."""
        import torch

        cached = self._proj_cache.get(name)
        if cached is not None:
            return cached
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        if self.projection == "sketch":
            bucket = torch.randint(self.proj_dim, (numel,), generator=gen).to(self.device)
            sign = (torch.randint(2, (numel,), generator=gen, dtype=torch.int8) * 2 - 1).to(self.device)
            self._proj_cache[name] = block = (bucket, sign)
            return block
        block = (torch.randn(numel, self.proj_dim, generator=gen) / math.sqrt(self.proj_dim)).to(self.device)
        if 4 * self.n_params * self.proj_dim <= self.proj_cache_bytes:
            self._proj_cache[name] = block
        return block

    def _project(self, grads: dict[str, Any]):
        """[B, P] flattened gradients → [B, k]; identity when k equals the subset size."""
        import torch

        flat = {name: g.reshape(g.shape[0], -1).float() for name, g in grads.items()}
        if self.proj_dim >= self.n_params:
            return torch.cat([flat[name] for name in self.params], dim=1)
        first = flat[next(iter(self.params))]
        total = torch.zeros(first.shape[0], self.proj_dim, device=first.device, dtype=torch.float32)
        for index, name in enumerate(self.params):
            proj = self._projection(name, index, flat[name].shape[1])
            if self.projection == "sketch":
                bucket, sign = proj
                total.index_add_(1, bucket, flat[name] * sign.to(torch.float32))
            else:
                total += flat[name] @ proj
        return total

    def val_grad_projected(self):
        """Projected mean target-loss gradient (computed once)."""
        import torch
        from torch.func import grad

        if self._val_grad_proj is None:
            acc = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in self.params.items()}
            for batch in self._val_batches:
                g = grad(self._val_sum)(self.params, batch)
                for name in acc:
                    acc[name] += g[name].float()
            mean = {name: (acc[name] / len(self.val))[None] for name in acc}
            self._val_grad_proj = self._project(mean)[0]
        return self._val_grad_proj

    def first_order(self, enc: Encoded) -> np.ndarray:
        """η · P∇L_val · P∇L_x with per-sample gradients from ``vmap(grad)`` and projection P."""
        import torch

        out = np.full(len(enc), np.nan)
        target = self.val_grad_projected()
        for idx in _chunks(self._by_length(enc), self.chunk_size):
            grads = self._per_sample_grads(self._collate(enc, idx))
            with torch.no_grad():
                out[idx] = (self.lr * (self._project(grads) @ target)).double().cpu().numpy()
        return out

    def score(self, enc: Encoded, mode: str = "auto", exact_max: int = EXACT_MAX) -> tuple[np.ndarray, str]:
        """Utilities of ``enc`` and the mode actually used (``auto``: exact up to ``exact_max``)."""
        if mode not in MODES:
            raise GdoError(f"ost_mode: {mode!r}: expected one of {', '.join(MODES)}")
        if mode == "auto":
            mode = "exact" if len(enc) <= exact_max else "first_order"
        return (self.exact(enc) if mode == "exact" else self.first_order(enc)), mode


def eager_attention(model: Any) -> str | None:
    """Switch ``model`` to eager attention (SDPA has no vmap batching rule); returns the old setting."""
    config = getattr(model, "config", None)
    old = getattr(config, "_attn_implementation", None)
    if old not in (None, "eager") and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    return old
