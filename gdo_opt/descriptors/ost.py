"""ost: One-Step-Train utility — how much one SGD step on the candidate lowers a target set's loss.

The maths lives in ``ost_scorer`` (model-agnostic; fed by ``ost_data``, ``ost_tokens``, ``ost_params``);
this module wires it into the descriptor stage.
Why the set-up is done once: the target set is decontaminated against the whole pool and the mode is
chosen from the pool size in ``setup``, so every chunk, rank and restart scores against the same
target loss and gradient, and a candidate's utility never depends on its chunk.

Options (``ExtractContext.options``): ``ost_val`` (target JSONL, required), ``ost_model`` (proxy folder;
default: the extraction model), ``ost_mode`` (exact | first_order | auto), ``ost_lr``, ``ost_params``,
``ost_proj_dim``, ``ost_proj``, ``ost_seed``, ``ost_max_len``, ``ost_chunk``, ``ost_val_chunk``,
``ost_exact_max``, ``ost_dtype``; ``candidates`` (or ``ost_pool``): the candidates.parquet to
decontaminate against.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gdo_opt.descriptors.base import Descriptor, ExtractContext, nan_column, register
from gdo_opt.descriptors.ost_data import decontaminate, load_validation
from gdo_opt.descriptors.ost_scorer import (
    DEFAULT_LR,
    DEFAULT_PROJ_DIM,
    EXACT_MAX,
    MODES,
    OstScorer,
    eager_attention,
)
from gdo_opt.descriptors.ost_tokens import DEFAULT_MAX_LEN, encode_pairs
from gdo_opt.errors import GdoError, ParameterError

DEFAULTS: dict[str, Any] = {
    "ost_mode": "auto",
    "ost_lr": DEFAULT_LR,
    "ost_params": "all",  # the whole proxy (ost_step); "lora", or a subset: lm_head, last_layers:N, re:<regex>
    "ost_media": True,  # False: the text-only, vmap-batched scorer (ost_scorer: subsets, projections)
    "ost_lora_rank": 8,
    "ost_proj_dim": DEFAULT_PROJ_DIM,
    "ost_proj": "auto",
    "ost_seed": 0,
    "ost_max_len": DEFAULT_MAX_LEN,
    "ost_chunk": 8,
    "ost_val_chunk": 16,
    "ost_exact_max": EXACT_MAX,
    "ost_dtype": "fp32",
}


def load_proxy(path: str | Path, device: str, dtype: str = "fp32"):
    """Load a local causal LM or VLM folder as the proxy → (model, processor-or-tokenizer).

    Eager attention because SDPA kernels have no ``vmap`` batching rule (they would loop per sample).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gdo_opt.descriptors.model import load_model, resolve_dtype

    path = Path(path)
    if not (path / "config.json").is_file():
        raise GdoError(f"ost_model: {path}: not a model folder (no config.json)")
    torch_dtype = resolve_dtype(dtype, device)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=torch_dtype, attn_implementation="eager"
        )
        processor = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except ValueError:  # a VLM config has no causal-LM mapping: load it the way the extractor does
        model, processor = load_model(path, device, torch_dtype)
    except OSError as error:
        raise GdoError(f"ost_model: {path}: cannot load: {str(error).splitlines()[0]}") from error
    model.to(torch.device(device)).eval()
    eager_attention(model)
    return model, processor


@contextlib.contextmanager
def _attention(model: Any):
    """Run with eager attention on a shared model, then give the other descriptors theirs back."""
    old = eager_attention(model)
    try:
        yield
    finally:
        if old not in (None, "eager"):
            model.set_attn_implementation(old)


def _pad_id(processor: Any) -> int:
    tok = getattr(processor, "tokenizer", None) or processor
    for value in (getattr(processor, "pad_id", None), tok.pad_token_id, tok.eos_token_id):
        if isinstance(value, int) and value >= 0:
            return value
    return 0


def _pool_questions(options: dict) -> tuple[list[str], Path]:
    from gdo_opt.ingest.candidates import candidates_path, load_candidates

    path = options.get("ost_pool") or options.get("candidates")
    if not path:
        raise GdoError("ost: the candidates table is needed to decontaminate ost_val (option 'candidates')")
    path = candidates_path(path)
    return load_candidates(path, columns=["question"])["question"].tolist(), path


@register
class OneStepTrain(Descriptor):
    name = "ost"
    columns = ("ost",)
    needs_model = True
    passes = ()

    def requires_model(self, options: dict) -> bool:
        """The extraction model is only needed when no separate proxy (``ost_model``) is given."""
        return not options.get("ost_model")

    def check_options(self, options: dict) -> None:
        """Before anything loads: the target set exists, the proxy folder exists, the mode is known."""
        if not options.get("ost_val"):
            raise ParameterError("ost_val", "required for the ost descriptor (the target/validation set)")
        if not Path(options["ost_val"]).is_file():
            raise ParameterError("ost_val", "file not found", options["ost_val"])
        if options.get("ost_model") and not (Path(options["ost_model"]) / "config.json").is_file():
            raise ParameterError("ost_model", "not a model folder (no config.json)", options["ost_model"])
        if options.get("ost_mode") not in (None, *MODES):
            raise ParameterError("ost_mode", f"expected one of {', '.join(MODES)}", options["ost_mode"])

    def setup(self, ctx: ExtractContext) -> None:
        opts = {**DEFAULTS, **{k: v for k, v in ctx.options.items() if v is not None}}
        if not opts.get("ost_val"):
            raise GdoError("ost: option ost_val (the target/validation JSONL) is required")
        self.media = bool(opts["ost_media"])
        if self.media:
            return self._setup_step(ctx, opts)
        device = str(ctx.device or "cpu")
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        if opts.get("ost_model"):
            self.model, self.processor = load_proxy(opts["ost_model"], device, str(opts["ost_dtype"]))
            self.shared = False
        else:
            if ctx.model is None:
                raise GdoError("ost: no model loaded; pass model or option ost_model")
            from gdo_opt.descriptors.model import resolve_dtype

            want = resolve_dtype(str(opts["ost_dtype"]), device)
            self.model, self.processor = ctx.model, ctx.processor
            self.shared = ctx.model.dtype == want
            if not self.shared:  # θ − ηg vanishes in bf16 rounding: score on one float32 copy
                self.model = copy.deepcopy(ctx.model).to(want).eval()
                eager_attention(self.model)
        pairs = load_validation(opts["ost_val"])
        questions, pool_path = _pool_questions(opts)
        pairs, self.dropped = decontaminate(pairs, questions)
        if not pairs:
            raise GdoError(f"ost_val: {opts['ost_val']}: every item also appears in {pool_path}")
        max_len = int(opts["ost_max_len"])
        self.max_len = max_len
        val = encode_pairs(self.processor, [q for q, _ in pairs], [a for _, a in pairs], max_len)
        with _attention(self.model) if self.shared else contextlib.nullcontext():
            self.scorer = OstScorer(
                self.model,
                val,
                params=str(opts["ost_params"]),
                lr=float(opts["ost_lr"]),
                proj_dim=int(opts["ost_proj_dim"]),
                projection=str(opts["ost_proj"]),
                seed=int(opts["ost_seed"]),
                pad_id=_pad_id(self.processor),
                chunk_size=int(opts["ost_chunk"]),
                val_chunk_size=int(opts["ost_val_chunk"]),
            )
        mode = str(opts["ost_mode"])
        if mode not in MODES:
            raise GdoError(f"ost_mode: {mode!r}: expected one of {', '.join(MODES)}")
        if mode == "auto":
            mode = "exact" if len(questions) <= int(opts["ost_exact_max"]) else "first_order"
        self.mode = mode
        if ctx.rank == 0:
            from rich.console import Console

            Console(stderr=True).print(
                f"[bold]ost[/]: {len(pairs)} target items ({self.dropped} dropped as pool duplicates), "
                f"mode {mode}, {self.scorer.n_params:,} parameters ({opts['ost_params']}), "
                f"base target loss {self.scorer.base_val_loss:.4f}"
            )

    def _setup_step(self, ctx: ExtractContext, opts: dict) -> None:
        """Whole proxy / LoRA / subset, one simulated SGD step with media (gdo_opt.descriptors.ost_step)."""
        from gdo_opt.descriptors.model import load_model, resolve_dtype
        from gdo_opt.descriptors.ost_step import StepScorer, read_validation
        from gdo_opt.descriptors.settings import resolve

        device = str(ctx.device or "cpu")
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        want = resolve_dtype(str(opts["ost_dtype"]), device)
        if opts.get("ost_model"):
            model, proc = load_model(opts["ost_model"], device, want)
        else:
            if ctx.model is None:
                raise GdoError("ost: no model loaded; pass --model or option ost_model")
            model, proc = ctx.model, ctx.processor
            if model.dtype != want:  # θ − ηg vanishes in bf16 rounding: score on a float32 copy
                model = copy.deepcopy(model).to(want).eval()
        questions, pool_path = _pool_questions(opts)
        rows, self.dropped = read_validation(str(opts["ost_val"]), questions)
        if not rows:
            raise GdoError(f"ost_val: {opts['ost_val']}: every item also appears in {pool_path}")
        settings = resolve({k: v for k, v in ctx.options.items() if k in ("mode", "frames", "image_frames",
                                                                           "loss_span", "text_norm")})
        self.scorer = StepScorer(model, proc, rows, settings, params=str(opts["ost_params"]),
                                 lr=float(opts["ost_lr"]), lora_rank=int(opts["ost_lora_rank"]),
                                 seed=int(opts["ost_seed"]))
        mode = str(opts["ost_mode"])
        if mode == "auto":
            mode = "exact" if len(questions) <= int(opts["ost_exact_max"]) else "first_order"
        self.mode = mode
        if ctx.rank == 0:
            from rich.console import Console

            Console(stderr=True).print(
                f"[bold]ost[/]: {len(rows)} target items ({self.dropped} dropped as pool duplicates), mode {mode}, "
                f"{self.scorer.n_params:,} parameters ({opts['ost_params']}, with media), "
                f"base target loss {self.scorer.base_val_loss:.4f}")

    def compute(self, batch: pd.DataFrame, ctx: ExtractContext) -> dict[str, np.ndarray]:
        if self.media:
            rows = batch.to_dict("records")
            for row in rows:
                row.setdefault("media", None)
                row.setdefault("media_kind", "")
            values = self.scorer.score(rows, self.mode)
            uids = batch["qa_uid"].astype(str).tolist()
            for i, message in self.scorer.errors.items():
                ctx.add_error(uids[i], self.name, message)
            return {"ost": values}
        answers = batch["answer"].fillna("").astype(str).tolist()
        out = nan_column(len(batch))
        ok = np.flatnonzero([bool(a.strip()) for a in answers])
        for uid in batch["qa_uid"].astype(str).to_numpy()[np.setdiff1d(np.arange(len(batch)), ok)]:
            ctx.add_error(uid, self.name, "empty answer")
        if len(ok) == 0:
            return {"ost": out}
        questions = batch["question"].fillna("").astype(str).to_numpy()[ok].tolist()
        enc = encode_pairs(self.processor, questions, [answers[i] for i in ok], self.max_len)
        with _attention(self.model) if self.shared else contextlib.nullcontext():
            values, _ = self.scorer.score(enc, self.mode)
        out[ok] = values
        return {"ost": out}
