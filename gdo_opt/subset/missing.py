"""Candidates without descriptors: how many, and what the build did with them, in numbers and words.

Every stage after `merge` says this on the console and in its report, so a pool whose extraction
was partial never passes silently as a complete one.
"""

from __future__ import annotations

import numpy as np


def missing_summary(score, policy: str, penalty: float, n: int, chosen: np.ndarray,
                    eligible: int) -> dict:
    """The report's ``missing_descriptors`` entry.

    ``score`` is the ``ScoreResult``: ``missing`` marks candidates with no usable term at all (they
    follow the preset's policy); a candidate missing only some terms scores those terms at the
    pool median (0 after normalization).
    """
    missing = np.asarray(score.missing, dtype=bool)
    by_descriptor = {t.descriptor: int(n - score.stats.get(t.descriptor, {}).get("available", n))
                     for t in score.terms}
    entry = {
        "candidates": int(missing.sum()),
        "pool": int(n),
        "policy": policy,
        "penalty": float(penalty) if policy == "penalty" else None,
        "selected": int(missing[chosen].sum()) if policy == "penalty" else 0,
        "excluded": int(n - eligible),
        "by_descriptor": dict(sorted(by_descriptor.items())),
    }
    entry["text"] = missing_text(entry)
    return entry


def missing_text(entry: dict) -> str:
    """One sentence (or two) for the console and the report."""
    count, pool = entry["candidates"], entry["pool"]
    partial = {k: v for k, v in entry["by_descriptor"].items() if v}
    if count == 0 and not partial:
        return f"All {pool:,} candidates have every descriptor the score uses."
    parts = []
    if count:
        if entry["policy"] == "exclude":
            what = f"excluded from the problem (score.missing = 'exclude'); {entry['excluded']} rows removed"
        else:
            what = (f"kept with ρ = {entry['penalty']:g} (score.missing = 'penalty'), so they are chosen only "
                    f"when the constraints need them; {entry['selected']} were selected")
        parts.append(f"{count:,} of {pool:,} candidates lack every descriptor the score uses: {what}.")
    if partial:
        listed = ", ".join(f"{k} {v:,}" for k, v in partial.items())
        parts.append(f"Without a value, per descriptor: {listed}; a candidate with some of them scores "
                     "the missing terms at the pool median (0 after normalization).")
    return " ".join(parts)
