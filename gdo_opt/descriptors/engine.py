"""The batched passes that every model descriptor reads, run once per chunk and memoized.

Why one engine: video dependency, difficulty, temporal need and model-mode coverage all read the
same "with media" forward pass (loss over the answer, a probe question appended after the answer,
pooled hidden states), so the engine runs the union of what the selected descriptors need once per
chunk: one media pass, one blind pass, one batched sampling call. Batches are sorted by token length
and packed to a token budget; an exception in a batch (OOM included) splits it and retries, and a
single failing candidate is recorded as an error instead of killing the run.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from gdo_opt.descriptors.model import DEFAULT_OPTIONS, Sample, VLProcessor, encode_media, prepare_sample
from gdo_opt.descriptors.model_free import FEATURE_DIM
from gdo_opt.descriptors.published import (
    TEMPORAL_NEW_TOKENS,
    normalize_texts,
    parse_temporal,
    temporal_messages,
    word_jaccard,
)
from gdo_opt.descriptors.sampling import KeyedGumbelSampler, pairwise_jaccard, row_key
from gdo_opt.descriptors.vision import vision_attention
from gdo_opt.errors import GdoError


class ModelEngine:
    """Runs the batched passes for one chunk and memoizes them for the descriptors that read them.

    Passes: ``media`` (loss_video), ``blind`` (loss_blind), ``probe`` (temporal_prob, appended to
    the media pass), ``features`` (pooled hidden states, from the media pass), ``generate`` (stability),
    ``temporal`` (temporal_prob: the published question-only prompt, 3 greedy tokens, once per question).
    """

    PASSES = ("media", "blind", "probe", "features", "generate", "temporal")

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
        self._temporal: dict[str, dict] = {}  # question -> {"temporal_prob": v} (published temporal pass)
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
                with torch.inference_mode(), vision_attention(self.model):
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
        with vision_attention(self.model):  # only runs when the per-media feature cache missed
            prefill = self.model.model(**inputs, position_ids=position_ids, use_cache=True)
        hidden_p, cache = prefill.last_hidden_state, prefill.past_key_values
        prompt_mask = inputs["attention_mask"]
        start = prompt_mask.sum(1) + delta  # position of the first token after each prompt
        out: dict[str, dict] = {s.uid: {} for s in batch}
        if want_cont:
            suffix = self._probe_suffix() if probe else []
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

    def _probe_suffix(self) -> list[int]:
        turn = self.options.get("loss_span") == "turn"
        return self.proc.probe_suffix_after_turn if turn else self.proc.probe_suffix

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
        if self.options.get("jaccard") == "words":  # published: word sets of the decoded answers
            rows = [g[v].tolist() for g, v in zip(gen.cpu(), valid.cpu())]
            texts = [t.strip() for t in self.proc.tokenizer.batch_decode(rows, skip_special_tokens=True)]
            return word_jaccard(texts, k)
        return pairwise_jaccard(gen, valid, k)

    def _temporal_pass(self, batch: list[Sample]) -> dict[str, dict]:
        """Published temporal need: greedy 3-token answer to the question-only prompt (no media)."""
        seqs = [s.temporal for s in batch]
        inputs, length = self._collate(seqs, None)
        inputs.pop("position_ids")
        gen = self.model.generate(**inputs, do_sample=False, max_new_tokens=TEMPORAL_NEW_TOKENS,
                                  temperature=None, top_p=None, top_k=None,
                                  pad_token_id=self.proc.pad_id, eos_token_id=self.proc.eos_ids)
        texts = self.proc.tokenizer.batch_decode(gen[:, length:].tolist(), skip_special_tokens=True)
        return {s.uid: {"temporal_prob": float(v), "temporal_text": t}
                for s, v, t in zip(batch, parse_temporal(texts), texts)}

    def _blind_pass(self, batch: list[Sample]) -> dict[str, tuple]:
        seqs = [s.blind + s.answer for s in batch]
        inputs, _ = self._collate(seqs, None)
        hidden = self.model.model(**inputs).last_hidden_state
        loss = self._answer_loss(hidden, inputs["input_ids"], [len(s.answer) for s in batch])
        return {s.uid: {"loss_blind": float(v)} for s, v in zip(batch, loss)}

    # ---- chunk API ------------------------------------------------------------------------------
    def prepare(self, batch: pd.DataFrame, errors: dict) -> list[Sample]:
        """Decode and preprocess each distinct media once (the turns of a clip share it; threads: PIL and
        OpenCV release the GIL), then tokenize every candidate (answer spans in one tokenizer call)."""
        batch = batch[["qa_uid", "question", "answer", "media", "media_kind"]].copy()
        if self.options.get("text_norm") == "published":
            batch["question"], batch["answer"] = normalize_texts(batch["question"]), normalize_texts(batch["answer"])
        rows = batch.to_dict("records")
        frames = int(self.options["frames"])
        first = self.options.get("image_frames") == "first"
        keys = [(tuple(str(m) for m in (r["media"] if r["media"] is not None else [])), str(r["media_kind"]))
                for r in rows]
        needs_media = bool(self.wanted & {"media", "probe", "features", "generate"})
        distinct = list(dict.fromkeys(keys)) if needs_media else []

        def encode(key):
            try:
                return encode_media(list(key[0]), key[1], self.proc, frames, first)
            except Exception as error:
                return error

        workers = max(1, int(self.options["workers"]))
        with ThreadPoolExecutor(workers) as threads:
            encoded = dict(zip(distinct, threads.map(encode, distinct)))
        spans = self.proc.answer_spans([r["answer"] for r in rows], str(self.options.get("loss_span", "turn")))
        temporal = {}
        if "temporal" in self.wanted:
            for q in dict.fromkeys(r["question"] for r in rows):
                temporal[q] = self.proc.encode(self.proc.render(temporal_messages(q)))
        empty = (torch.zeros(0), torch.zeros((0, 3), dtype=torch.long))
        samples = []
        for row, key, span in zip(rows, keys, spans):
            try:
                media = encoded.get(key, empty)
                if isinstance(media, Exception):
                    raise media
                sample = prepare_sample(row, self.proc, self.options, media, span)
                sample.media_key = key
                sample.temporal = temporal.get(row["question"])
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
        suffix = len(self._probe_suffix()) if "probe" in self.wanted else 0
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
        if "temporal" in self.wanted:
            plan.append(("temporal", self._temporal_pass, lambda s: len(s.temporal) + TEMPORAL_NEW_TOKENS))
        for where, fn, cost in plan:
            out: dict[str, dict] = {}
            todo = samples
            if where == "temporal":  # depends on the question only: once per distinct question, memoized
                todo = [s for s in {s.question: s for s in samples}.values() if s.question not in self._temporal]
            for sub in self._pack(todo, cost):
                self._guarded(fn, sub, where, out, errors)
            if where == "temporal":
                if len(self._temporal) > 1_000_000:
                    self._temporal.clear()
                self._temporal.update({s.question: out[s.uid] for s in todo if s.uid in out})
                out = {s.uid: self._temporal[s.question] for s in samples if s.question in self._temporal}
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
