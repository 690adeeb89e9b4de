"""OST target set: read it (the one QA-JSONL reader) and drop the items the pool also contains.

Decontamination normalizes questions exactly like the pool's ``dedup_key_q`` fingerprints
(``gdo_opt.ingest.text``), so "leaked" means the same thing here and in the ingest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from gdo_opt.errors import GdoError
from gdo_opt.ingest.qa_jsonl import read_qa_jsonl

_TAG = re.compile(r"<\s*(image|video)\s*>")


def normalize_questions(questions: Sequence[str]) -> list[str]:
    """Normalize questions the way the pool fingerprints them (tags stripped, lower case, words)."""
    import pyarrow as pa

    from gdo_opt.ingest.text import normalize, strip_tags

    return normalize(strip_tags(pa.array([str(q) for q in questions], pa.string()))).to_pylist()


def _clean(text: str | None) -> str:
    return _TAG.sub("", text or "").strip()


def load_validation(path: str | Path) -> list[tuple[str, str]]:
    """Read the target set: JSONL rows with ``question``/``answer`` or ms-swift ``messages``.

    A ``messages`` row contributes every user→assistant turn, as the pool does; media tags are dropped.
    """
    pairs = [(_clean(p.question), _clean(p.answer))
             for p in read_qa_jsonl(path, what="OST target set", need_answer=True)]
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
