"""The candidate table's schema and the fixed vocabularies of the ingest, in one light module.

Every later stage reads the table described here (docs/CONTRACTS.md, docs/ingest.md). Only the
standard library is imported, so the profile, the CLI and other stages can read these facts
without loading the block pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

# input kind -> qa_uid prefix (the published GDO metric files use ov:: and vv::)
PREFIX = {"onevision": "ov", "video": "vv", "pool": "gen"}

# Chat roles, one set for every reader of chat rows (pool files, exclude files, OST target sets).
USER_ROLES = ("user", "human")
ASSISTANT_ROLES = ("assistant", "gpt", "bot", "model")
SYSTEM_ROLES = ("system",)

# The temporal cue: one word list for the whole project. It decides the candidate table's
# `temporal_category` (RE2 via pyarrow) and the descriptor stage's regex fallback (Python `re`);
# the pattern uses only syntax both engines read the same way. The descriptor stage refines it with
# a model (`temporal_prob`). Why this list: words that ask about order, change or motion over time;
# "left"/"right" are left out because they mostly ask about places in a still image.
TEMPORAL_RE = (
    r"\b(?:before|after|first|then|next|last|finally|order|sequence|sequences|happen\w*|mov(?:e|es|ed|ing)"
    r"|motion|direction|speed|fast\w*|slow\w*|chang\w*|when|while|during|start\w*|begin\w*|end(?:s|ed)?"
    r"|later|earlier|previous\w*|until|since|towards?|away|rotat\w*|turn(?:s|ed|ing)?)\b"
)
MCQ_RE = r"(?m:^\s*\(?[A-E][.):]\s)|\([A-E]\)\s|(?i:\b(?:options|choices)\s*:)"

Q_LEN_EDGES, Q_LEN_LABELS = [8, 20, 50], ["1-8w", "9-20w", "21-50w", "50w+"]
A_LEN_EDGES, A_LEN_LABELS = [1, 10, 50], ["1w", "2-10w", "11-50w", "50w+"]
DUR_EDGES, DUR_LABELS = [10, 30, 60, 180], ["0-10s", "10-30s", "30-60s", "1-3min", "3min+"]
VIDEO_BUCKET, IMAGE_BUCKET = "short_video", "image_qa"

STRATA = ["bucket", "duration_bucket", "temporal_category", "question_form", "q_len_bucket", "a_len_bucket"]
COLUMNS = [
    "qa_uid", "row_id", "turn", "video_uid", "bucket", "question", "answer", "media", "media_kind",
    "n_frames", "source", "source_group", *STRATA[1:], "stratum", "dedup_key", "dedup_key_q", "file", "line",
]
PROFILE_FIELDS = ["bucket", "media_kind", *STRATA[1:], "source_group", "source"]


@dataclass(frozen=True)
class IngestOptions:
    target_frames: int = 32
    media_root: str | None = None
    frames_fps: float = 1.0  # frames per second assumed for frame lists without a `duration`
    source_groups: dict[str, str] | None = None
    media_dir: str | None = None  # where embedded media bytes are written (content-addressed)
    lean: str | None = None  # "all" / "paper": JSONL rows keep no text or media (gdo_opt.ingest.reload
    # rebuilds them for exports); "paper" also skips our own strata, cues and fingerprints
