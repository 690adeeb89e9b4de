"""Decontamination: drop candidates whose question (or question + answer) occurs in benchmark files.

Exclude files are read with the one QA-JSONL reader (``gdo_opt.ingest.qa_jsonl``) and fingerprinted
exactly like the pool (``gdo_opt.ingest.text``), so a benchmark row matches its pool copy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.ingest.qa_jsonl import read_qa_jsonl
from gdo_opt.ingest.text import fingerprints, normalize, strip_tags


def read_exclude(paths: Sequence[str | os.PathLike]) -> tuple[pa.Array, pa.Array]:
    """Benchmark / eval JSONL -> (question fingerprints, question+answer fingerprints).

    A flat row without an answer contributes a question fingerprint only.
    """
    pairs = [pair for path in paths for pair in read_qa_jsonl(path, what="exclude file")]
    if not pairs:
        return pa.array([], pa.string()), pa.array([], pa.string())
    nq = normalize(strip_tags(pa.array([p.question for p in pairs], pa.string())))
    has_a = pa.array([p.answer is not None for p in pairs])
    na = normalize(strip_tags(pa.array([p.answer or "" for p in pairs], pa.string())))
    qa, q = fingerprints(nq, na)
    return q, qa.filter(has_a)


def decontaminate(table: pa.Table, exclude: Sequence[str | os.PathLike]) -> tuple[pa.Table, int, list[str]]:
    """Drop candidates whose question or question+answer fingerprint occurs in the exclude files."""
    if not exclude:
        return table, 0, []
    q_keys, qa_keys = read_exclude(exclude)
    hit = pc.or_(pc.is_in(table.column("dedup_key_q"), value_set=q_keys),
                 pc.is_in(table.column("dedup_key"), value_set=qa_keys)).to_numpy(zero_copy_only=False)
    dropped = table.column("qa_uid").filter(pa.array(hit)).to_pylist()[:5]
    return table.filter(pa.array(~hit)), int(hit.sum()), dropped

