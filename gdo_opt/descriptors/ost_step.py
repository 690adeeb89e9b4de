"""OST as the method describes it: one simulated optimizer step on the proxy, with the sample's media.

utility(x) = L_val(θ) − L_val(θ − η ∇L_x(θ)), where θ is the **whole** proxy model (``params="all"``,
the default), its **LoRA adapters** (``params="lora"``: peft adapters on the attention and MLP
projections, initialised once with a fixed seed; only the adapters step), or a named subset
(``lm_head``, ``last_layers:N``, ``re:<regex>``). L is the teacher-forced loss over the answer span of
the descriptor settings (published: answer + end-of-turn tokens) **with the candidate's media** (and
each validation item's media), exactly the forward the extractor runs.

``exact``: the step θ − η g_x is applied through ``torch.func.functional_call`` (no model copy, θ
untouched) and L_val re-evaluated: 1 backward + |val| forwards per candidate. ``first_order``:
η ∇L_val · ∇L_x, the gradient dot product with the validation gradient computed once: 1 backward per
candidate, the scalable variant (docs/ost.md has its Spearman to the exact step).
Why a loop over candidates: a whole-model step is a full backward of the proxy per candidate; the
Python overhead per candidate is nothing next to that, and samples with different media do not stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gdo_opt.errors import GdoError

PARAMS = ("all", "lora")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def add_lora(model: Any, rank: int = 8, alpha: int = 16, seed: int = 0) -> Any:
    """Wrap the language model's projections with peft LoRA adapters, initialised as LoRA training starts
    (A Gaussian with a fixed seed, B = 0: the first step moves B, i.e. ΔW = ΔB·A, as in real LoRA SFT)."""
    import torch

    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise GdoError("ost_params lora needs peft (pip install 'gdo-opt[model]')") from error
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise GdoError("ost_params lora: the proxy has none of the projections " + ", ".join(LORA_TARGETS))
    # Language-model projections only (the vision tower keeps its weights).
    pattern = r".*language_model.*\.(" + "|".join(targets) + r")$"
    if not any("language_model" in n for n, _ in model.named_modules()):
        pattern = r".*\.(" + "|".join(targets) + r")$"
    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=pattern, init_lora_weights="gaussian")
    return get_peft_model(model, config).eval()


class StepScorer:
    """OST utilities of candidate rows against validation rows on one proxy (whole model, LoRA or subset).

    Rows are dicts with question, answer, media, media_kind (candidate-table rows); ``options`` are the
    descriptor settings (frames, image_frames, loss_span, text_norm), so the proxy sees what the
    extractor sees."""

    def __init__(self, model: Any, proc: Any, val_rows: list[dict], options: dict, *, params: str = "all",
                 lr: float = 1e-3, lora_rank: int = 8, seed: int = 0) -> None:
        import torch

        if not lr > 0:
            raise GdoError(f"ost_lr: {lr}: must be > 0")
        if not val_rows:
            raise GdoError("OST: the validation set is empty (after decontamination)")
        self.proc, self.options, self.lr = proc, options, float(lr)
        if params == "lora":  # on a copy: peft injects layers into the module it wraps
            import copy

            model = add_lora(copy.deepcopy(model), rank=lora_rank, seed=seed)
            chosen = {n: p for n, p in model.named_parameters() if "lora_" in n}
        elif params == "all":
            chosen = dict(model.named_parameters())
        else:
            from gdo_opt.descriptors.ost_params import select_params

            named = dict(model.named_parameters())
            chosen = {n: named[n] for n in select_params(model, params)}
        self.model = model.eval()
        self.names = list(chosen)
        self.params = {n: p.detach() for n, p in chosen.items()}
        self.n_params = int(sum(p.numel() for p in self.params.values()))
        self.device = next(model.parameters()).device
        self.val = [self.inputs(r) for r in val_rows]
        with torch.no_grad():
            self.base_val_loss = self.val_loss(self.params)
        self._val_grad = None

    # -- inputs and losses -------------------------------------------------
    def inputs(self, row: dict) -> dict:
        """Model kwargs of one row: prompt (+ media) + loss span, labels on the span only."""
        import torch

        from gdo_opt.descriptors.model import prepare_sample
        from gdo_opt.descriptors.published import normalize_texts

        row = dict(row)
        if self.options.get("text_norm") == "published":
            row["question"], row["answer"] = normalize_texts(pd.Series([row["question"], row["answer"]])).tolist()
        media = row.get("media")
        has_media = isinstance(media, (list, tuple, np.ndarray)) and len(media) > 0
        empty = (torch.zeros(0), torch.zeros((0, 3), dtype=torch.long))
        sample = prepare_sample(row, self.proc, self.options, None if has_media else empty)
        ids = torch.tensor([sample.prompt + sample.answer], device=self.device)
        labels = ids.clone()
        labels[:, : len(sample.prompt)] = -100
        kwargs = {"input_ids": ids, "labels": labels, "use_cache": False}
        if has_media:
            kwargs["pixel_values"] = sample.pixels.to(self.device, self.model.dtype)
            kwargs["image_grid_thw"] = sample.grids.to(self.device)
            kwargs["mm_token_type_ids"] = (ids == self.proc.image_token_id).long()
        return kwargs

    def loss(self, params: dict, kwargs: dict):
        from torch.func import functional_call

        return functional_call(self.model, params, args=(), kwargs=kwargs).loss

    def val_loss(self, params: dict) -> float:
        return float(sum(self.loss(params, v).double() for v in self.val) / len(self.val))

    def grad(self, kwargs: dict) -> dict:
        import torch

        leaves = {n: p.requires_grad_(True) for n, p in ((n, p.detach()) for n, p in self.params.items())}
        loss = self.loss(leaves, kwargs)
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        return {n: (g if g is not None else torch.zeros_like(leaves[n])) for n, g in zip(leaves, grads)}

    # -- estimators --------------------------------------------------------
    def exact(self, rows: list[dict]) -> np.ndarray:
        """L_val before − after the step θ − η ∇L_x, per row (NaN for a row that fails: see ``errors``)."""
        import torch

        out = np.full(len(rows), np.nan)
        self.errors: dict[int, str] = {}
        for i, row in enumerate(rows):
            try:
                g = self.grad(self.inputs(row))
                with torch.no_grad():
                    stepped = {n: p - self.lr * g[n] for n, p in self.params.items()}
                    out[i] = self.base_val_loss - self.val_loss(stepped)
            except Exception as error:  # noqa: BLE001 - recorded per candidate, never fatal
                self.errors[i] = _message(error)
        return out

    def val_grad(self) -> dict:
        """∇ of the mean validation loss (computed once)."""
        if self._val_grad is None:
            total = None
            for v in self.val:
                g = self.grad(v)
                total = g if total is None else {n: total[n] + g[n] for n in g}
            self._val_grad = {n: t / len(self.val) for n, t in total.items()}
        return self._val_grad

    def first_order(self, rows: list[dict]) -> np.ndarray:
        """η ∇L_val · ∇L_x per row."""
        out = np.full(len(rows), np.nan)
        self.errors = {}
        target = self.val_grad()
        for i, row in enumerate(rows):
            try:
                g = self.grad(self.inputs(row))
                out[i] = self.lr * float(sum((g[n].double() * target[n].double()).sum() for n in g))
            except Exception as error:  # noqa: BLE001
                self.errors[i] = _message(error)
        return out

    def score(self, rows: list[dict], mode: str) -> np.ndarray:
        if mode not in ("exact", "first_order"):
            raise GdoError(f"ost_mode: {mode!r}: expected exact or first_order")
        return self.exact(rows) if mode == "exact" else self.first_order(rows)


def _message(error: Exception) -> str:
    from gdo_opt.descriptors.media import MediaError

    return str(error) if isinstance(error, MediaError) else f"{type(error).__name__}: {error}"


def _jsonl_kind(path) -> str:
    """LLaVA-Video rows (``video_id``, or a frame list with a ``<video>`` tag) read as video, else generic."""
    import json

    with open(path, encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "{}")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return "pool"
    images = row.get("images") if isinstance(row, dict) else None
    tagged = "<video>" in first
    return "video" if isinstance(row, dict) and ("video_id" in row or (isinstance(images, list) and len(images) > 1
                                                                       and tagged)) else "pool"


def read_validation(path: str, pool_questions: list[str] | None = None) -> tuple[list[dict], int]:
    """Validation rows from any ingestable file (OneVision / LLaVA-Video / ms-swift / generic JSONL or
    Parquet, or a candidates.parquet), media included; flat question/answer JSONL rows are text-only.
    Items whose normalized question is a pool question are dropped -> (rows, dropped)."""
    from pathlib import Path

    from gdo_opt.descriptors import ost_data

    path_ = Path(path)
    if not path_.is_file():
        raise GdoError(f"ost_val: {path}: not found")
    rows: list[dict] = []
    if path_.suffix == ".parquet":
        import pyarrow.parquet as pq

        if {"qa_uid", "media_kind"} <= set(pq.read_schema(path_).names):
            rows = pd.read_parquet(path_, columns=["question", "answer", "media", "media_kind"]).to_dict("records")
    if not rows:
        try:
            from gdo_opt.ingest.pool import ingest

            kind = "pool" if path_.suffix == ".parquet" else _jsonl_kind(path_)
            table = ingest(**{kind: [path_]}, progress=False).to_pandas()
            rows = table[["question", "answer", "media", "media_kind"]].to_dict("records")
        except GdoError:
            rows = [{"question": q, "answer": a, "media": None, "media_kind": ""}
                    for q, a in ost_data.load_validation(path_)]
    if pool_questions is not None:
        seen = set(ost_data.normalize_questions(list(pool_questions)))
        keys = ost_data.normalize_questions([str(r["question"]) for r in rows])
        kept = [r for r, k in zip(rows, keys) if k not in seen]
        return kept, len(rows) - len(kept)
    return rows, 0
