"""The OST toy task, shared by tests/descriptors/test_ost.py and experiments/bench_ost.py.

Facts about objects asked with "pool" templates (the candidates) and different "target" templates
(the validation set, so decontamination keeps it), a word-level tokenizer and a tiny Qwen3 causal LM,
all built in code (no download). A fixture, not part of the pipeline: nothing in gdo_opt imports it.
"""

from __future__ import annotations

import numpy as np

from gdo_opt.descriptors.ost_tokens import Encoded

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

