"""One-Step-Train (OST) utility: how much one SGD step on a sample lowers a target set's loss.

utility(x) = L_val(θ) − L_val(θ − η ∇L_x(θ)), θ restricted to a parameter subset of a small proxy
model. Two estimators share the same tokenization and losses:

* ``exact``: the step is really applied with ``torch.func.functional_call`` on stacked per-sample
  parameter tensors (no model copies), and the validation loss is re-evaluated — O(N · |val|) passes.
* ``first_order``: utility ≈ η ∇L_val · ∇L_x, from per-sample gradients (``vmap(grad)``) randomly
  projected to ``proj_dim`` dimensions — O(N + |val|) passes, for large pools.

The module is model-agnostic: any Hugging Face causal LM or VLM whose forward accepts ``input_ids``
(text-only inputs; media are not fed). ``gdo_opt.descriptors.ost`` wraps it as the ``ost`` descriptor.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gdo_opt.errors import GdoError

DEFAULT_PARAMS = "lm_head"
DEFAULT_LR = 1e-3
DEFAULT_PROJ_DIM = 2048
DEFAULT_MAX_LEN = 512
EXACT_MAX = 1000  # auto mode: exact up to this many candidates, first-order above
MODES = ("exact", "first_order", "auto")
PROJECTIONS = ("auto", "gaussian", "sketch")

# ----------------------------------------------------------------------------- validation set


def normalize_question(text: str) -> str:
    """Fallback question normalization for decontamination: NFKC, lower case, alphanumerics only."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"<\s*(image|video)\s*>", " ", text)
    return " ".join(re.findall(r"\w+", text))


def normalize_questions(questions: Sequence[str]) -> list[str]:
    """Normalize questions the way the pool fingerprints them (gdo_opt.ingest.pool), so decontamination
    here and ``dedup_key_q`` agree; falls back to ``normalize_question`` without the pool module."""
    try:
        import pyarrow as pa

        from gdo_opt.ingest.text import normalize, strip_tags
    except ImportError:
        return [normalize_question(q) for q in questions]
    return normalize(strip_tags(pa.array([str(q) for q in questions], pa.string()))).to_pylist()


def _text_of(content: Any) -> str:
    """Text of an ms-swift message content (string or list of typed items), media tags removed."""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = " ".join(str(item.get("text", "")) for item in content if isinstance(item, dict))
    else:
        text = ""
    return re.sub(r"<\s*(image|video)\s*>", "", text).strip()


def load_validation(path: str | Path) -> list[tuple[str, str]]:
    """Read the target set: JSONL rows with ``question``/``answer`` or ms-swift ``messages``.

    A ``messages`` row contributes every user→assistant turn, as the pool does.
    """
    path = Path(path)
    if not path.is_file():
        raise GdoError(f"{path}: OST validation set not found")
    pairs: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise GdoError(f"{path}:{number}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise GdoError(f"{path}:{number}: expected a JSON object")
            if "question" in row and "answer" in row:
                pairs.append((_text_of(row["question"]), _text_of(row["answer"])))
            elif isinstance(row.get("messages"), list):
                pending = None
                for message in row["messages"]:
                    role = message.get("role") if isinstance(message, dict) else None
                    if role == "user":
                        pending = _text_of(message.get("content"))
                    elif role == "assistant" and pending is not None:
                        pairs.append((pending, _text_of(message.get("content"))))
                        pending = None
            else:
                raise GdoError(f"{path}:{number}: needs 'question' and 'answer' or a 'messages' list")
    pairs = [(q, a) for q, a in pairs if q and a]
    if not pairs:
        raise GdoError(f"{path}: OST validation set has no question/answer pairs")
    return pairs


def decontaminate(
    pairs: Sequence[tuple[str, str]], pool_questions: Iterable[str]
) -> tuple[list[tuple[str, str]], int]:
    """Drop target items whose normalized question is also a pool question (else OST rewards leaks)."""
    seen = set(normalize_questions(list(pool_questions)))
    keys = normalize_questions([q for q, _ in pairs])
    kept = [pair for pair, key in zip(pairs, keys) if key not in seen]
    return kept, len(pairs) - len(kept)


# ----------------------------------------------------------------------------- tokenization


@dataclass
class Encoded:
    """Token ids per example and where its answer starts (labels = ids[start:])."""

    ids: list[np.ndarray]
    start: np.ndarray  # int64: index of the first answer token

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def _tokenizer_of(processor: Any) -> Any:
    return getattr(processor, "tokenizer", None) or processor


def encode_pairs(processor: Any, questions: Sequence[str], answers: Sequence[str], max_len: int) -> Encoded:
    """Chat-template each pair and mark the answer tokens for a teacher-forced, answer-only loss.

    The assistant span is whatever the template adds after the generation prompt (answer + end of
    turn). Long examples keep the start of the answer (≤ max_len/2 tokens) and the end of the prompt.
    """
    tok = _tokenizer_of(processor)
    template = getattr(processor, "chat_template", None) or getattr(tok, "chat_template", None)
    if template:
        prompts = [
            tok.apply_chat_template(
                [{"role": "user", "content": q}], chat_template=template, tokenize=False, add_generation_prompt=True
            )
            for q in questions
        ]
        fulls = [
            tok.apply_chat_template(
                [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                chat_template=template,
                tokenize=False,
            )
            for q, a in zip(questions, answers)
        ]
    else:
        prompts = [f"Question: {q}\nAnswer: " for q in questions]
        fulls = [p + a + (tok.eos_token or "") for p, a in zip(prompts, answers)]
    prompt_ids = tok(prompts, add_special_tokens=False)["input_ids"]
    full_ids = tok(fulls, add_special_tokens=False)["input_ids"]
    ids, starts = [], []
    half = max(1, max_len // 2)
    for p, f, a in zip(prompt_ids, full_ids, answers):
        if len(f) > len(p) and f[: len(p)] == p:
            answer = f[len(p) :]
        else:  # template re-renders the prompt differently once an answer follows: append the answer
            answer = tok(a + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
        answer = answer[:half]
        prompt = p[-(max_len - len(answer)) :] if len(p) + len(answer) > max_len else p
        ids.append(np.asarray(list(prompt) + list(answer), dtype=np.int64))
        starts.append(len(prompt))
    return Encoded(ids, np.asarray(starts, dtype=np.int64))


# ----------------------------------------------------------------------------- parameter subset


def select_params(model: Any, spec: str = DEFAULT_PARAMS) -> dict[str, Any]:
    """Names → tensors of the parameters OST differentiates; everything else stays frozen.

    ``lm_head`` (the default): the output projection — on the toy check it separates corrupted answers
    best (docs/ost.md); with tied embeddings it is the shared embedding matrix. ``last_layers:N``: the
    last N blocks of the language model's ``layers`` list plus its final norm. ``re:<regex>``:
    parameters whose name matches.
    """
    named = dict(model.named_parameters())
    spec = spec.strip()
    if spec.startswith("last_layers:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise GdoError(f"ost_params: {spec!r}: expected last_layers:N with an integer N") from None
        if n < 1:
            raise GdoError(f"ost_params: {spec!r}: N must be >= 1")
        stacks: dict[str, set[int]] = {}
        for name in named:
            match = re.match(r"^(.*?)layers\.(\d+)\.", name)
            if match:
                stacks.setdefault(match.group(1), set()).add(int(match.group(2)))
        if not stacks:
            raise GdoError(f"ost_params: {spec!r}: the model has no '<prefix>layers.<i>.' parameters")
        # The language model's stack: prefer an explicit language_model prefix, then the deepest stack.
        prefix = max(stacks, key=lambda p: ("language_model" in p, len(stacks[p]), -len(p)))
        top = sorted(stacks[prefix])[-n:]
        keep = tuple(f"{prefix}layers.{i}." for i in top)
        chosen = [name for name in named if name.startswith(keep) or name == f"{prefix}norm.weight"]
    elif spec == "lm_head":
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        chosen = [name for name, p in named.items() if head is not None and p is head.weight]
        chosen = chosen or [name for name in named if re.search(r"(^|\.)lm_head\.", name)]
    elif spec.startswith("re:"):
        try:
            pattern = re.compile(spec[3:])
        except re.error as error:
            raise GdoError(f"ost_params: {spec!r}: bad regex ({error})") from None
        chosen = [name for name in named if pattern.search(name)]
    else:
        raise GdoError(f"ost_params: {spec!r}: expected last_layers:N, lm_head or re:<regex>")
    if not chosen:
        raise GdoError(f"ost_params: {spec!r} selects no parameters")
    return {name: named[name].detach() for name in chosen}


# ----------------------------------------------------------------------------- the scorer


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


# ----------------------------------------------------------------------------- synthetic check
# One definition of the toy task shared by tests/test_ost.py and experiments/bench_ost.py: facts about
# objects asked with "pool" templates (the candidates) and different "target" templates (the
# validation set, so decontamination keeps it), a word-level tokenizer and a tiny Qwen3 causal LM.

_OBJECTS = (
    "apple banana cherry grape lemon lime mango melon olive peach pear plum "
    "tiger zebra panda camel horse sheep goat mouse eagle shark whale snake"
).split()
_ATTRIBUTES = {
    "color": "red green blue yellow black white purple orange".split(),
    "place": "farm forest river desert ocean city mountain garden".split(),
}
_POOL_TEMPLATES = {
    "color": ("what color is the {o} ?", "which color does the {o} have ?"),
    "place": ("where does the {o} live ?", "in which place is the {o} found ?"),
}
_TARGET_TEMPLATES = {"color": ("tell me the color of the {o} .",), "place": ("tell me the home of the {o} .",)}


def toy_facts(seed: int = 0) -> dict[tuple[str, str], str]:
    """(object, attribute) → value, a fixed random mapping to learn."""
    rng = np.random.default_rng(seed)
    return {(o, a): str(rng.choice(values)) for a, values in _ATTRIBUTES.items() for o in _OBJECTS}


def toy_pool(n: int, corrupt: float = 0.3, seed: int = 0) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """``n`` pool QA pairs (cycled over facts × templates); a ``corrupt`` fraction gets another
    sample's answer (shuffled, never its own value). Returns questions, answers, is_corrupt, clean answers."""
    rng = np.random.default_rng(seed + 1)
    facts = toy_facts(seed)
    rows = [(t.format(o=o), v) for (o, a), v in facts.items() for t in _POOL_TEMPLATES[a]]
    order = rng.permutation(len(rows))
    picked = [rows[order[i % len(rows)]] for i in range(n)]
    questions = [q for q, _ in picked]
    clean = [v for _, v in picked]
    answers = list(clean)
    bad = np.zeros(n, dtype=bool)
    bad[rng.choice(n, size=int(round(corrupt * n)), replace=False)] = True
    donors = list(np.flatnonzero(bad))
    for i in np.flatnonzero(bad):
        choices = [d for d in donors if clean[d] != clean[i]] or [j for j in range(n) if clean[j] != clean[i]]
        answers[i] = clean[int(rng.choice(choices))]
    return questions, answers, bad, clean


def toy_targets(seed: int = 0) -> list[tuple[str, str]]:
    """Target (validation) pairs: the same facts asked with templates the pool never uses."""
    facts = toy_facts(seed)
    return [(t.format(o=o), v) for (o, a), v in facts.items() for t in _TARGET_TEMPLATES[a]]


def toy_tokenizer():
    """Word-level tokenizer over the toy vocabulary + Qwen chat tokens, built in code."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = set(_OBJECTS) | {v for values in _ATTRIBUTES.values() for v in values} | {"user", "assistant"}
    for templates in (*_POOL_TEMPLATES.values(), *_TARGET_TEMPLATES.values()):
        for template in templates:
            words |= set(template.replace("{o}", "").split())
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[UNK]"]
    vocab = {token: i for i, token in enumerate(specials + sorted(words))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="[UNK]"
    )
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tok.chat_template = (
        "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
        "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
    )
    return tok


def toy_model(tokenizer, seed: int = 0, layers: int = 2, hidden: int = 64):
    """A tiny randomly initialised Qwen3 causal LM (eager attention, float32) for ``tokenizer``."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=((len(tokenizer) + 15) // 16) * 16,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(config).eval()


def warm_up(model, enc: Encoded, steps: int = 60, batch: int = 16, lr: float = 3e-3, seed: int = 0,
            pad_id: int = 0) -> list[float]:
    """Train the proxy a few AdamW steps on ``enc`` (answer-only loss); returns the loss curve."""
    import torch

    gen = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    curve = []
    model.train()
    for _ in range(steps):
        idx = gen.choice(len(enc), size=min(batch, len(enc)), replace=False)
        width = int(enc.lengths[idx].max())
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        labels = torch.full((len(idx), width), -100, dtype=torch.long)
        for row, i in enumerate(idx):
            seq = torch.from_numpy(enc.ids[i])
            ids[row, : len(seq)] = seq
            labels[row, enc.start[i] : len(seq)] = seq[enc.start[i] :]
        loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
    model.eval()
    return curve
