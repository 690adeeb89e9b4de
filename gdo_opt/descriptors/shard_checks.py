"""Checks before shards are merged: every planned chunk is there and all come from one candidate table.

Why: a merge with missing chunks (a rank still running, a copy that stopped half way) or with shards
computed for another candidate table used to exit 0, and the gaps became "missing descriptors" that
the preset then quietly penalized or excluded. Each check is an error unless ``allow_missing``;
with it the gaps are merged as missing rows and reported.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow.parquet as pq

from gdo_opt.errors import GdoError

HINT = "pass --allow-missing to merge anyway (the gaps become rows with missing descriptors)"


def uid_digest(uids) -> str:
    """The digest the extract manifest keeps (sorted qa_uids, sha256, 16 hex digits)."""
    return hashlib.sha256("\n".join(sorted(str(u) for u in uids)).encode()).hexdigest()[:16]


def missing_chunks(folder: Path, manifest: dict) -> list[int]:
    """Chunk numbers the manifest planned that have no shard file (under any rank)."""
    planned = manifest.get("n_chunks")
    if not isinstance(planned, int):
        return []
    have = {int(p.stem.split("-chunk")[1]) for p in folder.glob("rank*-chunk*.parquet")}
    return sorted(set(range(planned)) - have)


def check_folder(folder: Path, manifest: dict, allow_missing: bool) -> list[str]:
    """Missing chunks of one shard folder: error, or a note when ``allow_missing``."""
    gaps = missing_chunks(folder, manifest)
    if not gaps:
        return []
    text = (f"{folder}: {len(gaps)} of {manifest['n_chunks']} chunks missing (first: chunk {gaps[0]}); "
            "is extract still running or did it stop?")
    if not allow_missing:
        raise GdoError(f"{text} {HINT}")
    return [text]


def check_candidates(cand_path: str | os.PathLike, uids, folders: list[tuple[Path, dict]],
                     allow_missing: bool) -> list[str]:
    """Each folder's manifest must name the same candidate table (by qa_uid digest) as ``cand_path``."""
    digest = uid_digest(uids)
    notes = []
    for folder, manifest in folders:
        theirs = manifest.get("qa_uid_digest")
        if theirs and theirs != digest:
            text = (f"{folder}: shards were extracted from another candidate table ({manifest.get('candidates')}, "
                    f"{manifest.get('n_candidates')} candidates) than {cand_path} ({len(uids)} candidates)")
            if not allow_missing:
                raise GdoError(f"{text}; {HINT}")
            notes.append(text)
    return notes


def check_coverage(cand_path, missing: list[str], allow_missing: bool) -> list[str]:
    """Candidates without any shard row."""
    if not missing:
        return []
    text = f"{cand_path}: {len(missing)} candidates have no shard row (first: {missing[0]})"
    if not allow_missing:
        raise GdoError(f"{text}; {HINT}")
    return [text]


def read_uids(cand_path) -> list[str]:
    if not Path(cand_path).is_file():
        raise GdoError(f"{cand_path}: candidate table not found")
    try:
        return pq.read_table(cand_path, columns=["qa_uid"]).column("qa_uid").to_pylist()
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types; one line either way
        raise GdoError(f"{cand_path}: cannot read qa_uid ({str(error).splitlines()[0]})") from None
