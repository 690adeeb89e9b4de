"""Model loading, prompt building and the batched passes that every model descriptor reads.

Why one engine: video dependency, difficulty, temporal need and model-mode coverage all read the
same "with media" forward pass (loss over the answer, a probe question appended after the answer,
pooled hidden states), so the engine runs the union of what the selected descriptors need once per
chunk: one media pass, one blind pass, one batched sampling call. Batches are sorted by token length
and packed to a token budget; an exception in a batch (OOM included) splits it and retries, and a
single failing candidate is recorded as an error instead of killing the run.

Frames are fed to the model as a list of images (the Qwen2-VL image processor, PIL backend): the
Qwen3-VL video processor needs torchvision, which the CPU environment lacks, and the image path is
deterministic across CPU and GPU.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gdo_opt.descriptors.media import MediaError, load_frames
from gdo_opt.errors import GdoError

PROBE_QUESTION = (
    "Does answering the question above require temporal information (order, motion or change across "
    "frames)? Answer with one word: Temporal or Static."
)
FEATURE_DIM = 256
IMAGE_PAD = "<|image_pad|>"
_SENTINEL = "\u2402ANSWER\u2402"

DEFAULT_OPTIONS: dict[str, Any] = {
    "frames": 8,
    "batch_size": 32,
    "token_budget": 16384,
    "stability_k": 5,
    "max_new_tokens": 24,
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "seed": 0,
    "workers": 2,
}


def resolve_dtype(name: str | None, device: str) -> torch.dtype:
    """``auto`` = bf16 on CUDA, float32 on CPU (so CPU results are exact enough to test)."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
             "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
    if name not in table:
        raise GdoError(f"--dtype {name}: expected auto, bf16, fp16 or fp32")
    return table[name]


class VLProcessor:
    """Tokenizer + image processor + chat template of a Qwen2.5-VL / Qwen3-VL folder.

    Expands each ``<|image_pad|>`` to ``prod(grid_thw) / merge_size**2`` tokens, exactly as
    ``Qwen3VLProcessor`` / ``Qwen2_5_VLProcessor`` do, without needing their video processor.
    """

    def __init__(self, tokenizer, image_processor, chat_template: str | None):
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template
        self.merge = int(getattr(image_processor, "merge_size", 2))
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = self._eos_ids()
        self.temporal_id = self.encode("Temporal")[0]
        self.static_id = self.encode("Static")[0]
        self.probe_suffix = self.encode(self._probe_suffix_text())

    def _eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        return sorted(i for i in ids if isinstance(i, int) and i >= 0)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, messages: list[dict], generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=generation_prompt
        )

    @staticmethod
    def user(question: str, n_images: int) -> dict:
        content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": question}]
        return {"role": "user", "content": content}

    def _probe_suffix_text(self) -> str:
        """Text after the answer that closes the turn and asks the probe (from the chat template)."""
        messages = [
            self.user("Q", 0),
            {"role": "assistant", "content": [{"type": "text", "text": _SENTINEL}]},
            {"role": "user", "content": [{"type": "text", "text": PROBE_QUESTION}]},
        ]
        text = self.render(messages)
        if _SENTINEL not in text:
            raise GdoError("chat template drops the assistant turn; cannot build the temporal probe")
        return text.split(_SENTINEL, 1)[1]

    def prompt_ids(self, question: str, grids: np.ndarray | None) -> list[int]:
        """Token ids of the user turn + generation prompt, image placeholders expanded."""
        n_images = 0 if grids is None else len(grids)
        text = self.render([self.user(question, n_images)])
        if n_images:
            parts = text.split(IMAGE_PAD)
            if len(parts) != n_images + 1:
                raise GdoError(f"chat template produced {len(parts) - 1} image placeholders for {n_images} images")
            counts = (np.prod(grids, axis=1) // (self.merge**2)).tolist()
            text = "".join(p + IMAGE_PAD * int(c) for p, c in zip(parts[:-1], counts)) + parts[-1]
        return self.encode(text)


def _chat_template(path: Path, tokenizer) -> str | None:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    if (path / "chat_template.json").is_file():
        return json.loads((path / "chat_template.json").read_text(encoding="utf-8")).get("chat_template")
    raise GdoError(f"{path}: no chat template (tokenizer_config.json, chat_template.jinja or .json)")


def load_model(path: str | os.PathLike, device: str = "cpu", dtype: str | torch.dtype | None = "auto"):
    """Load a local Qwen3-VL / Qwen2.5-VL folder -> (model in eval mode, VLProcessor). No downloads."""
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise GdoError(f"{path}: not a model folder (no config.json); try `gdo-opt make-tiny-model DIR`")
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype, device)
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, dtype=torch_dtype, attn_implementation="sdpa"
        )
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True, backend="pil")
    except (OSError, ValueError, KeyError) as error:
        raise GdoError(f"{path}: cannot load model: {str(error).splitlines()[0]}") from error
    model.to(device).eval()
    return model, VLProcessor(tokenizer, image_processor, _chat_template(path, tokenizer))


@dataclass
class Sample:
    """One candidate, tokenized: prompt with media, prompt without, answer, pixel patches."""

    uid: str
    prompt: list[int]
    blind: list[int]
    answer: list[int]
    pixels: torch.Tensor | None
    grids: torch.Tensor | None
    media_key: tuple | None = None  # identical for candidates that share their media (turns of a clip)


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


def encode_media(media, kind: str, proc: VLProcessor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode up to ``frames`` frames (or the image) and run the image processor -> (pixels, grid_thw)."""
    from PIL import Image

    images = load_frames(media, str(kind), frames)
    encoded = proc.image_processor(images=[Image.fromarray(f) for f in images], return_tensors="pt")
    return encoded["pixel_values"], encoded["image_grid_thw"]


def prepare_sample(row: dict, proc: VLProcessor, frames: int, media: tuple | None = None) -> Sample:
    """Tokenize one candidate; ``media`` = (pixels, grids) already encoded (else decoded here)."""
    question, answer = str(row["question"]), str(row["answer"])
    pixels, grids = media if media is not None else encode_media(row["media"], row["media_kind"], proc, frames)
    answer_ids = proc.encode(answer)
    if not answer_ids:
        raise MediaError("empty answer")
    return Sample(
        uid=str(row["qa_uid"]),
        prompt=proc.prompt_ids(question, grids.numpy()),
        blind=proc.prompt_ids(question, None),
        answer=answer_ids,
        pixels=pixels,
        grids=grids,
    )


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


class ModelEngine:
    """Runs the batched passes for one chunk and memoizes them for the descriptors that read them.

    Passes: ``media`` (loss_video), ``blind`` (loss_blind), ``probe`` (temporal_prob, appended to
    the media pass), ``features`` (pooled hidden states, from the media pass), ``generate`` (stability).
    """

    PASSES = ("media", "blind", "probe", "features", "generate")

    def __init__(self, model, proc: VLProcessor, device: str, options: dict | None = None):
        self.model, self.proc, self.device = model, proc, device
        self.options = {**DEFAULT_OPTIONS, **(options or {})}
        self.wanted: set[str] = set()
        self._memo: tuple[tuple[str, ...], dict[str, np.ndarray]] | None = None
        params = inspect.signature(model.model.forward).parameters
        self._accepts_mm_types = "mm_token_type_ids" in params
        # transformers >= 5: precomputed vision features can be passed in, so each media is encoded once.
        self._mm_outputs = "mm_encoder_outputs" in params and hasattr(model.model, "get_image_features")
        self._features: dict[tuple, tuple] = {}
        hidden = model.config.get_text_config().hidden_size
        gen = torch.Generator().manual_seed(12345)
        self._proj = (torch.randn(hidden, FEATURE_DIM, generator=gen) / FEATURE_DIM**0.5).to(device)

    def request(self, *passes: str) -> None:
        unknown = set(passes) - set(self.PASSES)
        if unknown:
            raise GdoError(f"unknown model pass(es): {sorted(unknown)}")
        self.wanted.update(passes)

    # ---- batching -------------------------------------------------------------------------------
    def _pack(self, samples: list[Sample], cost) -> list[list[Sample]]:
        """Sort by cost (token length) and pack into batches under the token budget and batch size."""
        order = sorted(samples, key=lambda s: (cost(s), s.uid))
        budget, cap = int(self.options["token_budget"]), int(self.options["batch_size"])
        batches, current = [], []
        for sample in order:
            width = max([cost(s) for s in current] + [cost(sample)])
            if current and (len(current) >= cap or width * (len(current) + 1) > budget):
                batches.append(current)
                current = []
            current.append(sample)
        if current:
            batches.append(current)
        return batches

    def _guarded(self, fn, batch: list[Sample], where: str, out: dict, errors: dict) -> None:
        """Run ``fn(batch)``; on failure split in halves and retry; a lone failure becomes an error."""
        try:
            with torch.inference_mode():
                out.update(fn(batch))
        except Exception as error:
            if isinstance(error, torch.OutOfMemoryError) and self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            if len(batch) == 1:
                errors.setdefault(batch[0].uid, []).append(f"{where}: {type(error).__name__}: {error}")
                return
            half = len(batch) // 2
            self._guarded(fn, batch[:half], where, out, errors)
            self._guarded(fn, batch[half:], where, out, errors)

    def _collate(self, seqs: list[list[int]], samples: list[Sample] | None):
        """Left-pad token lists; attach pixels of ``samples`` (None = text only)."""
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), self.proc.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for b, seq in enumerate(seqs):
            ids[b, length - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[b, length - len(seq):] = 1
        inputs = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        if samples is not None:
            dtype = self.model.dtype
            inputs["image_grid_thw"] = torch.cat([s.grids for s in samples]).to(self.device)
            if all(s.media_key in self._features for s in samples):  # vision tower already ran on them
                inputs["mm_encoder_outputs"] = {"image": self._features_of(samples)}
            else:
                inputs["pixel_values"] = torch.cat([s.pixels for s in samples]).to(self.device, dtype)
            if self._accepts_mm_types:
                inputs["mm_token_type_ids"] = (inputs["input_ids"] == self.proc.image_token_id).long()
        else:
            inputs["position_ids"] = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        return inputs, length

    # ---- vision features, once per distinct media --------------------------------------------------
    def _vision_attention(self):
        """Context: the vision tower uses ``grouped_varlen_attention`` (restored afterwards, so other
        users of the model, e.g. the one-at-a-time reference, keep HF's own path)."""
        import contextlib

        visual = getattr(self.model.model, "visual", None)
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

    def _encode_images(self, samples: list[Sample]) -> None:
        """Run the vision tower once per distinct media of the chunk, many images per call (packed to
        ``token_budget`` x 4 patches); a group that fails is left to the per-batch pixel path."""
        self._features = {}
        if not self._mm_outputs:
            return
        first: dict[tuple, Sample] = {}
        for s in samples:
            first.setdefault(s.media_key, s)
        budget = 4 * int(self.options["token_budget"])
        groups, current, size = [], [], 0
        for key, s in first.items():
            if current and size + len(s.pixels) > budget:
                groups.append(current)
                current, size = [], 0
            current.append((key, s))
            size += len(s.pixels)
        if current:
            groups.append(current)
        for group in groups:
            try:
                with torch.inference_mode(), self._vision_attention():
                    pixels = torch.cat([s.pixels for _, s in group]).to(self.device, self.model.dtype)
                    grids = torch.cat([s.grids for _, s in group]).to(self.device)
                    out = self.model.model.get_image_features(pixels, grids, return_dict=True)
            except Exception:  # noqa: BLE001 - the pixel path retries per micro-batch and records errors
                continue
            offset = 0
            for key, s in group:
                n = len(s.grids)
                self._features[key] = (out.pooler_output[offset:offset + n],
                                       [tuple(layer[offset:offset + n]) for layer in out.deepstack_features],
                                       type(out))
                offset += n

    def _features_of(self, samples: list[Sample]):
        """The vision-tower output for a micro-batch, assembled from the per-media cache."""
        parts = [self._features[s.media_key] for s in samples]
        pooled = tuple(t for p in parts for t in p[0])
        deep = [tuple(t for p in parts for t in p[1][layer]) for layer in range(len(parts[0][1]))]
        return parts[0][2](pooler_output=pooled, deepstack_features=deep)

    def _answer_loss(self, hidden, ids, answer_lens: list[int]) -> np.ndarray:
        """Per-sample mean cross-entropy over the answer tokens, which end every left-padded row;
        logits only at those positions."""
        lens = torch.tensor(answer_lens, device=hidden.device)
        width = ids.shape[1]
        is_answer = torch.arange(1, width, device=hidden.device)[None, :] >= (width - lens)[:, None]
        rows = torch.nonzero(is_answer)[:, 0]
        logits = self.model.lm_head(hidden[:, :-1][is_answer]).float()
        ce = F.cross_entropy(logits, ids[:, 1:][is_answer], reduction="none").double()
        total = torch.zeros(len(answer_lens), dtype=torch.float64, device=hidden.device).index_add_(0, rows, ce)
        return (total / lens.double()).cpu().numpy()

    # ---- passes ---------------------------------------------------------------------------------
    def _rope(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """M-RoPE position ids of a left-padded prompt batch and each row's text offset (delta).

        After the prompt, text token i of a row sits at position i + delta on all three axes, so the
        continuation and the decode steps get their positions without recomputing the vision layout."""
        fn = self.model.model.get_rope_index
        params = inspect.signature(fn).parameters
        kwargs = {k: inputs[k] for k in ("image_grid_thw", "attention_mask", "mm_token_type_ids")
                  if k in params and k in inputs}
        position_ids, delta = fn(inputs["input_ids"], **kwargs)
        return position_ids, delta.reshape(-1).to(inputs["input_ids"].device)

    def _text_forward(self, ids, mask, start, cache):
        """Text tokens after a cached prefix; ``start`` [rows] = position of each row's first token."""
        pos = start[:, None] + torch.arange(ids.shape[1], device=ids.device)[None, :]
        return self.model.model(input_ids=ids, attention_mask=mask, position_ids=pos[None].expand(3, -1, -1),
                                past_key_values=cache, use_cache=True).last_hidden_state

    def _media_pass(self, batch: list[Sample]) -> dict[str, dict]:
        """One with-media prefill of the prompts (the vision tower runs once per image), then from its
        KV cache: the teacher-forced answer + probe continuation (loss_video, temporal_prob, features)
        and the k sampled answers (stability) -- no second vision pass, no k-fold prompt prefill."""
        want_cont = bool(self.wanted & {"media", "probe", "features"})
        probe = "probe" in self.wanted
        inputs, length = self._collate([s.prompt for s in batch], batch)
        position_ids, delta = self._rope(inputs)
        with self._vision_attention():  # only runs when the per-media feature cache missed
            prefill = self.model.model(**inputs, position_ids=position_ids, use_cache=True)
        hidden_p, cache = prefill.last_hidden_state, prefill.past_key_values
        prompt_mask = inputs["attention_mask"]
        start = prompt_mask.sum(1) + delta  # position of the first token after each prompt
        out: dict[str, dict] = {s.uid: {} for s in batch}
        if want_cont:
            suffix = self.proc.probe_suffix if probe else []
            conts = [s.answer + suffix for s in batch]
            width = max(len(c) for c in conts)
            ids = torch.full((len(batch), width), self.proc.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for b, cont in enumerate(conts):  # right-padded: real tokens never attend to later pads
                ids[b, : len(cont)] = torch.tensor(cont, dtype=torch.long)
                mask[b, : len(cont)] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            hidden_c = self._text_forward(ids, torch.cat([prompt_mask, mask], 1), start, cache)
            # Position j of `shifted` predicts continuation token j (j = 0: the prompt's last state).
            shifted = torch.cat([hidden_p[:, -1:], hidden_c[:, :-1]], 1)
            answer_lens = torch.tensor([len(s.answer) for s in batch], device=self.device)
            is_answer = torch.arange(width, device=self.device)[None, :] < answer_lens[:, None]
            rows = torch.nonzero(is_answer)[:, 0]
            logits = self.model.lm_head(shifted[is_answer]).float()
            ce = F.cross_entropy(logits, ids[is_answer], reduction="none").double()
            total = torch.zeros(len(batch), dtype=torch.float64, device=self.device).index_add_(0, rows, ce)
            loss = (total / answer_lens.double()).cpu().numpy()
            for s, v in zip(batch, loss):
                out[s.uid]["loss_video"] = float(v)
            if probe:
                last = answer_lens + len(suffix) - 1
                final = hidden_c[torch.arange(len(batch), device=self.device), last]
                pair = self.model.lm_head(final).float()[:, [self.proc.temporal_id, self.proc.static_id]]
                prob = torch.softmax(pair, dim=-1)[:, 0].double().cpu().numpy()
                for s, p in zip(batch, prob):
                    out[s.uid]["temporal_prob"] = float(p)
            if "features" in self.wanted:
                summed = (hidden_p.float() * prompt_mask[..., None]).sum(1) + (
                    hidden_c.float() * is_answer[..., None]).sum(1)
                pooled = summed / (prompt_mask.sum(1) + answer_lens)[:, None]
                feats = F.normalize(pooled @ self._proj, dim=-1).cpu().numpy().astype(np.float32)
                for s, f in zip(batch, feats):
                    out[s.uid]["feat"] = f
            cache.crop(-width)  # back to the prompt: the samples continue from there
        if "generate" in self.wanted:
            jac = self._sample(batch, inputs, hidden_p[:, -1], cache, start, length)
            for s, v in zip(batch, jac):
                out[s.uid]["stability"] = float(v)
        return out

    def _logits_processors(self, sampler, prompt_ids):
        """The processors ``generate(do_sample=True, ...)`` would build (warpers first, then ours)."""
        import copy

        from transformers import LogitsProcessorList

        opts = self.options
        config = copy.deepcopy(self.model.generation_config)
        config.update(do_sample=True, temperature=float(opts["temperature"]), top_k=int(opts["top_k"]),
                      top_p=float(opts["top_p"]), max_new_tokens=int(opts["max_new_tokens"]),
                      pad_token_id=self.proc.pad_id, eos_token_id=self.proc.eos_ids)
        self.model._prepare_special_tokens(config, True, device=prompt_ids.device)
        return self.model._get_logits_processor(
            generation_config=config, input_ids_seq_length=prompt_ids.shape[1], encoder_input_ids=prompt_ids,
            logits_processor=LogitsProcessorList([sampler]), device=prompt_ids.device, model_kwargs={},
        )

    def _sample(self, batch, inputs, last_hidden, cache, start, length) -> np.ndarray:
        """k keyed samples per candidate, decoded from the shared prompt cache (repeated k times).

        Same token rule as ``generate(do_sample=True, num_return_sequences=k)`` with our sampler:
        processors, then the one-hot keyed pick; finished rows emit pad; stop when all rows are done."""
        k, new = int(self.options["stability_k"]), int(self.options["max_new_tokens"])
        keys = [row_key(int(self.options["seed"]), s.uid, j) for s in batch for j in range(k)]
        sampler = KeyedGumbelSampler(keys, length)
        seq = inputs["input_ids"].repeat_interleave(k, 0)
        processors = self._logits_processors(sampler, seq)
        mask = inputs["attention_mask"].repeat_interleave(k, 0)
        start = start.repeat_interleave(k, 0)
        cache.batch_repeat_interleave(k)
        eos = torch.tensor(self.proc.eos_ids, device=seq.device)
        alive = torch.ones(seq.shape[0], dtype=torch.bool, device=seq.device)
        logits = self.model.lm_head(last_hidden).float().repeat_interleave(k, 0)
        for step in range(new):
            pick = processors(seq, logits).argmax(-1)
            pick = torch.where(alive, pick, torch.full_like(pick, self.proc.pad_id))
            seq = torch.cat([seq, pick[:, None]], 1)
            alive &= ~torch.isin(pick, eos)
            if step == new - 1 or not bool(alive.any()):
                break
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
            hidden = self._text_forward(pick[:, None], mask, start + step, cache)
            logits = self.model.lm_head(hidden[:, -1]).float()
        gen = seq[:, length:]
        stop = torch.isin(gen, eos)
        valid = (stop.long().cumsum(-1) == 0) & (gen != self.proc.pad_id)
        return pairwise_jaccard(gen, valid, k)

    def _blind_pass(self, batch: list[Sample]) -> dict[str, tuple]:
        seqs = [s.blind + s.answer for s in batch]
        inputs, _ = self._collate(seqs, None)
        hidden = self.model.model(**inputs).last_hidden_state
        loss = self._answer_loss(hidden, inputs["input_ids"], [len(s.answer) for s in batch])
        return {s.uid: {"loss_blind": float(v)} for s, v in zip(batch, loss)}

    # ---- chunk API ------------------------------------------------------------------------------
    def prepare(self, batch: pd.DataFrame, errors: dict) -> list[Sample]:
        """Decode and preprocess each distinct media once (the turns of a clip share it; threads: PIL and
        OpenCV release the GIL), then tokenize every candidate."""
        rows = batch[["qa_uid", "question", "answer", "media", "media_kind"]].to_dict("records")
        frames = int(self.options["frames"])
        keys = [(tuple(str(m) for m in (r["media"] if r["media"] is not None else [])), str(r["media_kind"]))
                for r in rows]
        distinct = list(dict.fromkeys(keys))

        def encode(key):
            try:
                return encode_media(list(key[0]), key[1], self.proc, frames)
            except Exception as error:
                return error

        workers = max(1, int(self.options["workers"]))
        with ThreadPoolExecutor(workers) as threads:
            encoded = dict(zip(distinct, threads.map(encode, distinct)))
        samples = []
        for row, key in zip(rows, keys):
            try:
                media = encoded[key]
                if isinstance(media, Exception):
                    raise media
                sample = prepare_sample(row, self.proc, frames, media)
                sample.media_key = key
                samples.append(sample)
            except Exception as error:
                errors.setdefault(str(row["qa_uid"]), []).append(f"media: {type(error).__name__}: {error}")
        return samples

    def results(self, batch: pd.DataFrame, errors: dict | None = None) -> dict[str, np.ndarray]:
        """Arrays aligned with ``batch`` rows for every value the wanted passes produce (memoized)."""
        uids = tuple(batch["qa_uid"].astype(str))
        if self._memo is not None and self._memo[0] == uids:
            return self._memo[1]
        errors = {} if errors is None else errors
        samples = self.prepare(batch, errors)
        found: dict[str, dict] = {s.uid: {} for s in samples}
        if self.wanted & {"media", "probe", "features", "generate"}:
            self._encode_images(samples)
        k, new = int(self.options["stability_k"]), int(self.options["max_new_tokens"])
        suffix = len(self.proc.probe_suffix) if "probe" in self.wanted else 0
        cont = bool(self.wanted & {"media", "probe", "features"})
        gen = "generate" in self.wanted

        def prompt_cost(s: Sample) -> int:  # padded tokens of the forward, or of the k-fold decode cache
            return max(len(s.prompt) + (len(s.answer) + suffix if cont else 0),
                       k * (len(s.prompt) + new) if gen else 0)

        plan = []
        if cont or gen:
            plan.append(("media", self._media_pass, prompt_cost))
        if "blind" in self.wanted:
            plan.append(("blind", self._blind_pass, lambda s: len(s.blind) + len(s.answer)))
        for where, fn, cost in plan:
            out: dict[str, dict] = {}
            for sub in self._pack(samples, cost):
                self._guarded(fn, sub, where, out, errors)
            for uid, values in out.items():
                found[uid].update(values)
        n = len(uids)
        arrays: dict[str, np.ndarray] = {}
        for column in ("loss_video", "loss_blind", "temporal_prob", "stability"):
            arrays[column] = np.array([found.get(u, {}).get(column, np.nan) for u in uids], dtype=np.float64)
        feats = np.full((n, FEATURE_DIM), np.nan, dtype=np.float32)
        for i, u in enumerate(uids):
            if "feat" in found.get(u, {}):
                feats[i] = found[u]["feat"]
        arrays["feat"] = feats
        self._features = {}
        self._memo = (uids, arrays)
        return arrays


def reference_descriptors(row: dict, model, proc: VLProcessor, options: dict | None = None) -> dict[str, Any]:
    """One candidate at a time, the way the published GDO code does it: two full forward passes with
    HF's own loss, a generate call for temporal need (parsed), k separate sampled generations.
    Used by the tests (independent check of the batched losses) and as the benchmark baseline."""
    opts = {**DEFAULT_OPTIONS, **(options or {})}
    sample = prepare_sample(row, proc, int(opts["frames"]))
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
