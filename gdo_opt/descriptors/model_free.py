"""Model-free helpers that must not import torch (the hashed coverage features)."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURE_DIM = 256


def hashed_features(batch: pd.DataFrame) -> np.ndarray:
    """L2-normalised hashed word uni/bi-grams of question + answer + media kind (no fit, stateless)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    text = (
        batch["question"].astype(str) + " " + batch["answer"].astype(str) + " __" + batch["media_kind"].astype(str)
    )
    vectorizer = HashingVectorizer(n_features=FEATURE_DIM, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    return vectorizer.transform(text.tolist()).toarray().astype(np.float32)
