"""OST tokenization: chat-templated question/answer pairs with the answer span marked, so losses
are teacher-forced over the answer tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_MAX_LEN = 512


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
