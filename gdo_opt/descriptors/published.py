"""Text-side definitions of the published GDO extractor, vectorized (no torch here).

Reimplemented from the definitions in rujiewu/GDO ``gdo/extract_six_metrics.py``; nothing is copied.
- ``normalize_texts``: media tags become a space, whitespace runs one space (the published reader).
- ``temporal_messages`` / ``parse_temporal``: the question-only prompt whose 3-token greedy answer
  gives temporal need 1 ("temporal" in it), 0 ("static") or 0.5 (neither).
- ``word_jaccard``: stability = mean pairwise Jaccard of the word sets of k decoded answers.
- ``text_features``: 16 hashed word-count bins of question + answer, L2-normalized (+1e-6).
  One deliberate difference: bins come from MurmurHash3 (sklearn), not Python's ``hash()``, which
  is salted per process, so the published features change from run to run and rank to rank.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WORD_PATTERN = r"[A-Za-z0-9_]+"
MEDIA_TAGS = r"<image>|<video>|<audio>"
TEXT_BINS = 16
RGB_DIM = 6
# Published coverage features: text bins, RGB mean/std, then these descriptor values (NaN -> 0).
FEATURE_TAIL = ("temporal_prob", "amm", "frame_diversity", "ppl", "vds")
PUB_FEAT_DIM = TEXT_BINS + RGB_DIM
TEMPORAL_PROMPT = (
    "Decide if the question requires temporal reasoning over multiple frames.\n"
    "Answer only one word: Temporal or Static.\n"
    "Question: {question}"
)
TEMPORAL_NEW_TOKENS = 3


def normalize_texts(texts: pd.Series) -> pd.Series:
    """Media tags -> one space, then every whitespace run -> one space, trimmed."""
    return texts.fillna("").astype(str).str.replace(MEDIA_TAGS, " ", regex=True).str.split().str.join(" ")


def temporal_messages(question: str) -> list[dict]:
    """The published temporal-need chat: one user turn, text only (no media)."""
    return [{"role": "user", "content": [{"type": "text", "text": TEMPORAL_PROMPT.format(question=question)}]}]


def parse_temporal(answers: list[str]) -> np.ndarray:
    """Decoded greedy answers -> 1.0 if "temporal" occurs, else 0.0 if "static" occurs, else 0.5."""
    text = pd.Series(answers, dtype=object).fillna("").astype(str).str.strip().str.lower()
    return np.where(text.str.contains("temporal", regex=False), 1.0,
                    np.where(text.str.contains("static", regex=False), 0.0, 0.5))


def word_jaccard(texts: list[str], k: int) -> np.ndarray:
    """Mean pairwise Jaccard of lower-cased word sets; ``texts`` are grouped k per candidate.
    Two empty answers count as identical (1.0), as in the published code."""
    from sklearn.feature_extraction.text import CountVectorizer

    groups = len(texts) // k
    vectorizer = CountVectorizer(token_pattern=WORD_PATTERN, lowercase=True, binary=True)
    try:
        presence = vectorizer.fit_transform(texts).astype(np.float64)
    except ValueError:  # no word in any answer: every pair is two empty sets
        return np.ones(groups)
    dense = presence.toarray().reshape(groups, k, -1)
    inter = dense @ dense.transpose(0, 2, 1)
    size = dense.sum(-1)
    union = size[:, :, None] + size[:, None, :] - inter
    jac = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    iu = np.triu_indices(k, 1)
    return jac[:, iu[0], iu[1]].mean(-1)


def text_features(questions: pd.Series, answers: pd.Series) -> np.ndarray:
    """[n, 16] float32: word counts of question + answer hashed into 16 bins, L2-normalized (+1e-6)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    text = questions.fillna("").astype(str) + " " + answers.fillna("").astype(str)
    vectorizer = HashingVectorizer(n_features=TEXT_BINS, token_pattern=WORD_PATTERN, lowercase=True,
                                   alternate_sign=False, norm=None)
    counts = vectorizer.transform(text.tolist()).toarray().astype(np.float32)
    return counts / (np.linalg.norm(counts, axis=1, keepdims=True) + np.float32(1e-6))
