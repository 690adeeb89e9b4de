"""Descriptor settings: the ``published`` mode (default) and our ``fast`` variants, and their checks.

``published`` reproduces every definition and default of the published GDO extractor
(rujiewu/GDO ``gdo/extract_six_metrics.py`` + ``gdo/merge_metrics.py``), so descriptors computed by
us and by the published code agree on the same model and data. ``fast`` keeps the cheaper variants
this project built first; docs/descriptors.md says when a user would pick them. Any single option
can still be overridden on top of a mode (``--frames 8`` on top of ``published``, say).

Pure Python (no torch): the CLI checks every option here before anything is loaded or created.
"""

from __future__ import annotations

from typing import Any

from gdo_opt.errors import ParameterError

MODES = ("published", "fast")

# What each setting means (docs/descriptors.md has the table with the reasons).
PUBLISHED: dict[str, Any] = {
    "frames": 32,              # frames fed to the model per video (published --target-frames)
    "image_frames": "first",   # image rows: the first image only (published OneVision reader)
    "text_norm": "published",  # media tags -> space, whitespace runs -> one space (published normalize_text)
    "loss_span": "turn",       # loss over the answer + the end-of-turn tokens the chat template adds
    "temporal_mode": "prompt",  # 3-token greedy answer to the published question-only prompt -> 1 / 0 / 0.5
    "stability_k": 5,
    "temperature": 0.8,
    "top_p": 0.9,
    "top_k": 0,
    "max_new_tokens": 32,
    "jaccard": "words",        # Jaccard on lower-cased [A-Za-z0-9_]+ word sets of the decoded answers
    "coverage_mode": "published",  # hashed text (16) + RGB mean/std (6) + tnc, amm, diversity, ppl, vds
    "motion": "published",     # 224x224 gray, Farneback levels 2 / iterations 2 / poly_sigma 1.1
    "motion_frames": 8,        # of the (up to) 32 model frames (published --flow-frames)
    "clusters": 4096,          # merge: MiniBatchKMeans k, capped by the number of rows
    "normalize": "published",  # merge: z = (x - median) / (IQR / 1.349), unclipped, NaN counted as 0
}
FAST: dict[str, Any] = {
    "frames": 8,
    "image_frames": "all",
    "text_norm": "ingest",
    "loss_span": "answer",
    "temporal_mode": "probe",
    "stability_k": 5,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 0,
    "max_new_tokens": 24,
    "jaccard": "tokens",
    "coverage_mode": "hidden",
    "motion": "fast",
    "motion_frames": 8,
    "clusters": 0,             # 0 = sqrt(n / 2) clipped to 2..256
    "normalize": "clip",
}
CHOICES: dict[str, tuple[str, ...]] = {
    "image_frames": ("first", "all"),
    "text_norm": ("published", "ingest"),
    "loss_span": ("turn", "answer"),
    "temporal_mode": ("prompt", "probe", "regex"),
    "jaccard": ("words", "tokens"),
    "coverage_mode": ("published", "hidden", "hashed"),
    "motion": ("published", "fast"),
    "normalize": ("published", "clip"),
}
# Engine / runner settings shared by both modes.
COMMON: dict[str, Any] = {
    "batch_size": 32,
    "token_budget": 16384,
    "chunk_size": 256,
    "seed": 0,
    "workers": 2,
}
POSITIVE_INT = ("frames", "stability_k", "max_new_tokens", "motion_frames", "batch_size", "token_budget",
                "chunk_size")
NON_NEGATIVE_INT = ("top_k", "workers", "clusters")


def mode_options(mode: str = "published") -> dict[str, Any]:
    """The full option set of ``mode`` (``published`` or ``fast``)."""
    if mode not in MODES:
        raise ParameterError("mode", f"expected {' or '.join(MODES)}", mode)
    return {**COMMON, **(PUBLISHED if mode == "published" else FAST), "mode": mode}


def resolve(options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` on top of its mode's defaults (``mode`` key, default ``published``), checked."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    opts = {**mode_options(str(options.get("mode", "published"))), **options}
    check(opts)
    return opts


def check(opts: dict[str, Any]) -> None:
    """Raise ParameterError naming the option for the first bad one (called before anything is loaded)."""
    for key, allowed in CHOICES.items():
        if key in opts and str(opts[key]) not in allowed:
            raise ParameterError(key, f"expected {', '.join(allowed)}", opts[key])
    for key in POSITIVE_INT:
        if key in opts and (isinstance(opts[key], bool) or not isinstance(opts[key], int) or opts[key] < 1):
            raise ParameterError(key, "must be an integer >= 1", opts[key])
    for key in NON_NEGATIVE_INT:
        if key in opts and (isinstance(opts[key], bool) or not isinstance(opts[key], int) or opts[key] < 0):
            raise ParameterError(key, "must be an integer >= 0", opts[key])
    if "temperature" in opts and not float(opts["temperature"]) > 0:
        raise ParameterError("temperature", "must be > 0", opts["temperature"])
    if "top_p" in opts and not 0 < float(opts["top_p"]) <= 1:
        raise ParameterError("top_p", "must be in (0, 1]", opts["top_p"])
    if opts.get("stability_k", 2) < 2:
        raise ParameterError("stability_k", "needs >= 2 samples for a pairwise Jaccard", opts["stability_k"])
    if opts.get("threads") is not None and int(opts["threads"]) < 1:
        raise ParameterError("threads", "must be >= 1", opts["threads"])


def describe(opts: dict[str, Any]) -> str:
    """One line naming the settings a run uses (printed by extract and the demo)."""
    keys = ("frames", "image_frames", "loss_span", "temporal_mode", "stability_k", "temperature", "top_p",
            "max_new_tokens", "jaccard", "coverage_mode", "motion", "motion_frames")
    return f"mode {opts.get('mode', 'published')}: " + ", ".join(f"{k}={opts[k]}" for k in keys if k in opts)
