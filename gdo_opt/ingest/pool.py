"""Pool ingest: LLaVA-OneVision / LLaVA-Video / generic JSONL or Parquet -> one candidate table.

Every later stage reads the table built here (schema: docs/CONTRACTS.md, docs/ingest.md). Files are
streamed in blocks (``gdo_opt.ingest.read``); each block is turned into per-turn rows with whole-column
numpy / pyarrow.compute operations (turn pairing, tag stripping, regex cues, fingerprints, frame
resampling), so there is no Python loop per candidate on the fast path. Large inputs run their
blocks in worker processes and are reassembled in input order, so the output does not depend on
timing: same inputs -> byte-identical ``candidates.parquet`` and ``profile.json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gdo_opt.errors import GdoError
from gdo_opt.ingest import read as pool_read
from gdo_opt.ingest.read import (
    RawBlock,
    SkipLog,
    iter_jsonl_blocks,
    parse_jsonl_block,
)
from gdo_opt.ingest.text import (
    bucket_labels,
    constant,
    fingerprints,
    normalize,
    resolve_paths,
    source_groups,
    strip_tags,
    word_counts,
)

# input kind -> qa_uid prefix (the published GDO metric files use ov:: and vv::)
PREFIX = {"onevision": "ov", "video": "vv", "pool": "gen"}
USER_ROLES = ["user", "human"]
ASSISTANT_ROLES = ["assistant", "gpt", "bot", "model"]
SYSTEM_ROLES = ["system"]
# Cheap cue only: the descriptor stage refines it with a model (temporal_prob).
TEMPORAL_RE = (
    r"\b(?:before|after|first|then|next|last|finally|order|sequence|sequences|happen\w*|mov(?:e|es|ed|ing)"
    r"|motion|direction|speed|fast\w*|slow\w*|chang\w*|when|while|during|start\w*|begin\w*|end(?:s|ed)?"
    r"|later|earlier|previous\w*|until|since|towards?|away|rotat\w*|turn(?:s|ed|ing)?)\b"
)
MCQ_RE = r"(?m:^\s*\(?[A-E][.):]\s)|\([A-E]\)\s|(?i:\b(?:options|choices)\s*:)"
Q_LEN_EDGES, Q_LEN_LABELS = [8, 20, 50], ["1-8w", "9-20w", "21-50w", "50w+"]
A_LEN_EDGES, A_LEN_LABELS = [1, 10, 50], ["1w", "2-10w", "11-50w", "50w+"]
DUR_EDGES, DUR_LABELS = [10, 30, 60, 180], ["0-10s", "10-30s", "30-60s", "1-3min", "3min+"]
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


@dataclass
class IngestResult:
    """The candidate table, its profile, and what was skipped (by reason, first examples)."""

    table: pa.Table
    profile: dict
    skips: SkipLog
    decontaminated: int
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def skipped(self) -> dict[str, int]:
        return dict(self.skips.counts)

    @property
    def examples(self) -> dict[str, list[str]]:
        return dict(self.skips.examples)

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()


# ---------------------------------------------------------------- one block -> candidate rows
@dataclass
class _MediaPlan:
    """Row-level media choice: where each row's paths start in ``values`` and how many to take."""

    values: pa.Array
    start: np.ndarray
    src_len: np.ndarray
    count: np.ndarray
    resample: np.ndarray
    kind_code: np.ndarray  # 0 none, 1 image, 2 frames, 3 video


def _media_plan(block: RawBlock, kind: str, opts: IngestOptions) -> _MediaPlan:
    """First image (OneVision), all images (generic), frames (LLaVA-Video `images`, resampled to
    ``target_frames``), or the video path(s); ``pool`` rows prefer `videos` like ms-swift."""
    rows = block.rows
    imgs, vids = rows.column("images").combine_chunks(), rows.column("videos").combine_chunks()
    img_len = pc.fill_null(pc.list_value_length(imgs), 0).to_numpy().astype(np.int64)
    vid_len = pc.fill_null(pc.list_value_length(vids), 0).to_numpy().astype(np.int64)
    has_img, has_vid = img_len > 0, vid_len > 0
    if kind == "pool":
        use_vid, use_img = has_vid, has_img & ~has_vid
    else:
        use_img, use_vid = has_img, has_vid & ~has_img
    flat_img, flat_vid = pc.list_flatten(imgs), pc.list_flatten(vids)
    values = pa.concat_arrays([flat_img.cast(pa.string()), flat_vid.cast(pa.string())])
    start = np.where(use_img, np.cumsum(img_len) - img_len, len(flat_img) + np.cumsum(vid_len) - vid_len)
    src_len = np.where(use_img, img_len, np.where(use_vid, vid_len, 0))
    frames = use_img & (kind == "video")
    if kind == "onevision":
        count = np.where(use_img, 1, src_len)
    else:
        count = np.where(frames, np.minimum(src_len, opts.target_frames), src_len)
    kind_code = np.where(frames, 2, np.where(use_vid, 3, np.where(use_img, 1, 0)))
    return _MediaPlan(values, start, src_len, count, frames & (src_len > opts.target_frames), kind_code)


def _media_lists(plan: _MediaPlan, sel: np.ndarray, target: int, root: str) -> pa.Array:
    """Media lists for the rows ``sel`` (one per candidate): one gather, uniform ``round(linspace)``
    frame indices for long frame lists, then path resolution."""
    count = plan.count[sel]
    offsets = np.concatenate(([0], np.cumsum(count))).astype(np.int64)
    owner = np.repeat(np.arange(len(sel)), count)
    j = np.arange(offsets[-1]) - offsets[:-1][owner]
    row = sel[owner]
    step = (plan.src_len[row] - 1) / max(target - 1, 1)
    within = np.where(plan.resample[row], np.rint(j * step).astype(np.int64), j)
    values = resolve_paths(plan.values.take(pa.array(plan.start[row] + within)), root)
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def process_block(block: RawBlock, kind: str, file: str, opts: IngestOptions) -> pa.Table:
    """Raw rows + messages of one block -> candidate rows (one per user->assistant turn).

    Bad rows are counted into ``block.skips`` with their file:line and dropped.
    """
    rows, msgs, skips = block.rows, block.msgs, block.skips
    n = rows.num_rows
    lines = rows.column("line").to_numpy()
    root = opts.media_root or os.path.dirname(os.path.abspath(file))
    plan = _media_plan(block, kind, opts)
    has_media, is_frames = plan.kind_code > 0, plan.kind_code == 2
    media_kind = pa.array(["", "image", "frames", "video"]).take(pa.array(plan.kind_code))
    n_frames = np.where(plan.kind_code == 3, 0, plan.src_len).astype(np.int32)

    # -- turn pairing: drop system messages, then roles must go user, assistant, user, ...
    m_row = msgs.column("row").to_numpy()
    role = pc.utf8_lower(pc.utf8_trim_whitespace(pc.fill_null(msgs.column("role").combine_chunks(), "")))
    is_user = pc.is_in(role, value_set=pa.array(USER_ROLES)).to_numpy(zero_copy_only=False)
    is_asst = pc.is_in(role, value_set=pa.array(ASSISTANT_ROLES)).to_numpy(zero_copy_only=False)
    kept = np.flatnonzero(~pc.is_in(role, value_set=pa.array(SYSTEM_ROLES)).to_numpy(zero_copy_only=False))
    k_row = m_row[kept]
    pos = np.arange(len(kept)) - np.searchsorted(k_row, k_row, side="left")
    even = pos % 2 == 0
    bad = np.where(even, ~is_user[kept], ~is_asst[kept])
    n_msgs = np.bincount(k_row, minlength=n)
    non_alt = (np.bincount(k_row, weights=bad, minlength=n) > 0) | (n_msgs % 2 == 1) | (n_msgs == 0)
    skips.add("no_media", file, lines[~has_media])
    skips.add("non_alternating", file, lines[has_media & non_alt])
    good = has_media & ~non_alt

    q_sel = np.flatnonzero(even & good[k_row])
    q_idx, a_idx = kept[q_sel], kept[q_sel + 1]
    t_row, turn = k_row[q_sel], (pos[q_sel] // 2).astype(np.int32)
    texts = msgs.column("text").combine_chunks()
    q_mask = np.zeros(len(texts), dtype=bool)
    q_mask[q_idx] = True
    a_mask = np.zeros(len(texts), dtype=bool)
    a_mask[a_idx] = True  # q_idx / a_idx are increasing: sequential filters beat random takes
    question = strip_tags(texts.filter(pa.array(q_mask)))
    answer = strip_tags(texts.filter(pa.array(a_mask)))
    empty = (pc.utf8_length(answer).to_numpy() == 0)
    if empty.any():
        skips.add("empty_answer", file, lines[t_row[empty]], [f"turn {k}" for k in turn[empty][: skips.keep]])
        keep = pa.array(~empty)
        question, answer = question.filter(keep), answer.filter(keep)
        t_row, turn = t_row[~empty], turn[~empty]
    take = pa.array(t_row)
    m = len(t_row)

    # -- row-level fields, then broadcast to turns
    stem, name = Path(file).stem, Path(file).name
    ident = rows.column("id").combine_chunks()
    line_s = pc.cast(pa.array(lines), pa.string())
    row_id = pc.if_else(pc.greater(pc.fill_null(pc.utf8_length(ident), 0), 0), ident,
                        pc.binary_join_element_wise(name, pc.binary_join_element_wise("L", line_s, ""), "-"))
    src = pc.utf8_trim_whitespace(pc.fill_null(rows.column("data_source").combine_chunks(), ""))
    source = pc.if_else(pc.equal(src, ""), stem, src)
    video_kind = is_frames | (pc.equal(media_kind, "video").to_numpy(zero_copy_only=False))
    vid_id = pc.fill_null(rows.column("video_id").combine_chunks(), "")
    # media per row (resample + resolve once), then a cheap list take for rows with several turns
    urows = np.unique(t_row)
    media = _media_lists(plan, urows, opts.target_frames, root).take(pa.array(np.searchsorted(urows, t_row)))
    # video rows without a video_id: the row id for frame lists, the (resolved) path for a video file
    first_path = media.flatten().take(pa.array(media.offsets.to_numpy()[:-1]))
    vid_t = vid_id.take(take)
    video_uid = pc.if_else(pc.equal(vid_t, ""), pc.if_else(pa.array(is_frames), row_id, "").take(take), vid_t)
    video_uid = pc.if_else(pc.and_(pc.equal(video_uid, ""), pc.equal(media_kind.take(take), "video")), first_path,
                           video_uid)
    video_uid = pc.if_else(pa.array(video_kind[t_row]), video_uid, "")
    duration = rows.column("duration").to_numpy(zero_copy_only=False).astype(np.float64)
    secs = np.where(np.isnan(duration), np.where(is_frames, n_frames / opts.frames_fps, np.nan), duration)
    dur_label = bucket_labels(np.nan_to_num(secs, nan=0.0), DUR_EDGES, DUR_LABELS)
    dur_label = pc.if_else(pa.array(~video_kind), "image", pc.if_else(pa.array(np.isnan(secs)), "unknown", dur_label))
    bucket = pc.if_else(pa.array(video_kind), "short_video", "image_qa")

    bucket_t = bucket.take(take)
    nq, na = normalize(question), normalize(answer)
    q_words, a_words = word_counts(nq), word_counts(na)
    temporal = pc.if_else(pc.match_substring_regex(question, TEMPORAL_RE, ignore_case=True), "temporal", "static")
    form = pc.if_else(pc.match_substring_regex(question, MCQ_RE), "MCQ", "Open")
    strata = [bucket_t, dur_label.take(take), temporal, form,
              bucket_labels(q_words, Q_LEN_EDGES, Q_LEN_LABELS), bucket_labels(a_words, A_LEN_EDGES, A_LEN_LABELS)]
    row_id_t = row_id.take(take)
    keys = fingerprints(nq, na)
    turn_s = pc.binary_join_element_wise("t", pc.cast(pa.array(turn), pa.string()), "")
    source_t = source.take(take)
    cols = {
        "qa_uid": pc.binary_join_element_wise(PREFIX[kind], row_id_t, turn_s, "::"),
        "row_id": row_id_t,
        "turn": pa.array(turn, pa.int32()),
        "video_uid": video_uid,
        "bucket": bucket_t,
        "question": question,
        "answer": answer,
        "media": media,
        "media_kind": media_kind.take(take),
        "n_frames": pa.array(n_frames).take(take),
        "source": source_t,
        "source_group": source_groups(source_t, opts.source_groups),
        "duration_bucket": strata[1],
        "temporal_category": strata[2],
        "question_form": strata[3],
        "q_len_bucket": strata[4],
        "a_len_bucket": strata[5],
        "stratum": pc.binary_join_element_wise(*strata, "|"),
        "dedup_key": keys[0],
        "dedup_key_q": keys[1],
        "file": constant(m, file),
        "line": pa.array(lines, pa.int64()).take(take),
    }
    return pa.table(cols)


# ---------------------------------------------------------------- files -> table
def _check_file(path: str | os.PathLike) -> Path:
    from gdo_opt.ingest.hf import is_url

    p = Path(path)
    if is_url(str(path)) or p.is_dir():  # Hugging Face-style sources: checked by gdo_opt.ingest.hf
        return p
    if not p.exists():
        raise GdoError(f"{path}: no such file")
    if not p.is_file():
        raise GdoError(f"{path}: not a file")
    return p


def _jsonl_job(buf: bytes, first_line: int, kind: str, file: str, opts: IngestOptions, spill: str | None,
               use_threads: bool) -> tuple[pa.Table | str, SkipLog, int]:
    """Parse + process one JSONL block. In a worker process the result is spilled to an Arrow IPC
    file (``spill``) that the parent memory-maps: no pickling of large tables."""
    block = parse_jsonl_block(buf, first_line, file, use_threads=use_threads)
    table = process_block(block, kind, file, opts)
    if spill is None:
        return table, block.skips, len(buf)
    with pa.OSFile(spill, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return spill, block.skips, len(buf)


def _blocks(path: Path, file: str, kind: str, opts: IngestOptions, pool: ProcessPoolExecutor | None,
            workers: int, spill_dir: str | None) -> Iterable[tuple[pa.Table, SkipLog, int]]:
    """Process the blocks of one file (in worker processes when ``pool``), yielding in file order."""
    from gdo_opt.ingest.hf import is_hf_source, iter_hf_blocks

    if is_hf_source(file):  # Parquet (embedded bytes or paths), save_to_disk folders, fsspec URLs
        for block in iter_hf_blocks(file, file, opts.media_dir, opts.media_root):
            yield process_block(block, kind, file, opts), block.skips, block.n_bytes
        return
    if pool is None:
        for buf, first_line in iter_jsonl_blocks(path):
            yield _jsonl_job(buf, first_line, kind, file, opts, None, True)
        return
    pending: deque = deque()

    def result():
        spill, block_skips, n_bytes = pending.popleft().result()
        table = pa.ipc.open_file(pa.memory_map(spill)).read_all()
        os.unlink(spill)  # the mapping stays valid
        return table, block_skips, n_bytes

    for k, (buf, first_line) in enumerate(iter_jsonl_blocks(path)):
        spill = os.path.join(spill_dir, f"{k}.arrow")
        pending.append(pool.submit(_jsonl_job, buf, first_line, kind, file, opts, spill, False))
        if len(pending) >= 2 * workers:
            yield result()
    while pending:
        yield result()


def read_exclude(paths: Sequence[str | os.PathLike]) -> tuple[pa.Array, pa.Array]:
    """Benchmark / eval JSONL -> (question fingerprints, question+answer fingerprints).

    Rows may be chat rows (`messages`/`conversations`) or flat (`question`|`prompt`|`query`,
    `answer`|`response`|`output`|`label`). Small files, so a plain loop is fine here.
    """
    qs: list[str] = []
    ans: list[str] = []
    for path in paths:
        p = _check_file(path)
        with open(p, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as error:
                    raise GdoError(f"{path}:{line_no}: exclude file line is not valid JSON ({error})") from error
                if not isinstance(obj, dict):
                    raise GdoError(f"{path}:{line_no}: exclude file line is not a JSON object")
                msgs = obj.get("messages") or obj.get("conversations")
                if isinstance(msgs, list):
                    texts = [(str(m.get("role", m.get("from", ""))).lower(), m.get("content", m.get("value")))
                             for m in msgs if isinstance(m, dict)]
                    for (r1, q), (r2, a) in zip(texts, texts[1:]):
                        if r1 in USER_ROLES and r2 in ASSISTANT_ROLES:
                            qs.append(str(q or ""))
                            ans.append(str(a or ""))
                    continue
                q = next((obj[k] for k in ("question", "prompt", "query") if obj.get(k) is not None), None)
                if q is None:
                    raise GdoError(f"{path}:{line_no}: exclude row has no question/prompt/query or messages")
                a = next((obj[k] for k in ("answer", "response", "output", "label") if obj.get(k) is not None), None)
                qs.append(str(q))
                ans.append(None if a is None else str(a))
    if not qs:
        return pa.array([], pa.string()), pa.array([], pa.string())
    nq = normalize(strip_tags(pa.array(qs, pa.string())))
    has_a = pa.array([a is not None for a in ans])
    na = normalize(strip_tags(pa.array([a or "" for a in ans], pa.string())))
    qa, q = fingerprints(nq, na)
    return q, qa.filter(has_a)


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task) -> Text:
            rows = task.fields.get("rows", 0)
            rate = rows / task.elapsed if task.elapsed else 0.0
            return Text(f"{rows:,} QA  {rate:,.0f} rows/s", style="progress.data.speed")

    progress = Progress(TextColumn("ingest {task.description}"), BarColumn(), TaskProgressColumn(),
                        RowsPerSecond(), TimeElapsedColumn(), console=Console(stderr=True),
                        disable=not enabled, transient=False)
    return progress


def build_table(
    inputs: Sequence[tuple[str, str | os.PathLike]],
    opts: IngestOptions = IngestOptions(),
    workers: int | None = None,
    progress: bool = False,
) -> tuple[pa.Table, SkipLog, list[dict]]:
    """(kind, path) inputs -> concatenated candidate rows, skip log, per-file stats (in input order)."""
    if opts.target_frames < 1:
        raise GdoError(f"--target-frames must be >= 1 (got {opts.target_frames})")
    checked = [(kind, str(path), _check_file(path)) for kind, path in inputs]
    if not checked:
        raise GdoError("no input files: give --onevision, --video and/or --pool")
    workers = max(1, workers or min(4, os.cpu_count() or 1))
    skips, tables, stats = SkipLog(), [], []
    total = sum(p.stat().st_size if p.is_file() else 0 for _, _, p in checked)
    bar = _progress(progress)
    pool = spill_dir = None
    if workers > 1 and total > 2 * pool_read.BLOCK_BYTES:  # small inputs: not worth starting processes
        # processes, not threads: parts of the block pipeline hold the GIL. fork where available
        # (fast start, inherits imports); workers spill results to Arrow IPC files we memory-map.
        method = "fork" if "fork" in mp.get_all_start_methods() and sys.platform == "linux" else "spawn"
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method))
        spill_dir = tempfile.mkdtemp(prefix="gdo-ingest-")
    try:
        with bar:
            task = bar.add_task("", total=total, rows=0)
            done_rows = 0
            for kind, file, path in checked:
                bar.update(task, description=path.name)
                file_tables, file_skips = [], SkipLog()
                for table, block_skips, n_bytes in _blocks(path, file, kind, opts, pool, workers, spill_dir):
                    file_tables.append(table)
                    file_skips.merge(block_skips)
                    done_rows += table.num_rows
                    bar.update(task, advance=n_bytes, rows=done_rows)
                n_cand = sum(t.num_rows for t in file_tables)
                if n_cand == 0:
                    why = f" ({file_skips.total} skipped: {file_skips.summary()})" if file_skips.total else ""
                    raise GdoError(f"{file}: no usable rows{why}")
                skips.merge(file_skips)
                tables.extend(file_tables)
                stats.append({"file": file, "kind": kind, "candidates": n_cand, "skipped": file_skips.total})
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
            shutil.rmtree(spill_dir, ignore_errors=True)
    return pa.concat_tables(tables), skips, stats


def _drop_duplicate_ids(table: pa.Table, skips: SkipLog) -> pa.Table:
    """Keep the first row (in input order) of every (prefix, id); later rows are skipped."""
    if table.num_rows == 0:
        return table
    key = pc.binary_join_element_wise(pc.utf8_slice_codeunits(table.column("qa_uid"), 0, 3),
                                      table.column("row_id"), "|")
    codes = pc.dictionary_encode(key).combine_chunks().indices.to_numpy()
    file_enc = pc.dictionary_encode(table.column("file")).combine_chunks()
    file_codes, files = file_enc.indices.to_numpy(), file_enc.dictionary.to_pylist()
    order = file_codes.astype(np.int64) * (1 << 40) + table.column("line").to_numpy()
    _, first_idx = np.unique(codes, return_index=True)
    dup = order != order[first_idx][codes]
    if not dup.any():
        return table
    dup_pos = np.flatnonzero(dup)
    row_pos = dup_pos[np.unique(order[dup_pos], return_index=True)[1]]  # one entry per skipped row
    lines, ids = table.column("line").to_numpy(), table.column("row_id")
    examples = [f"{files[file_codes[i]]}:{lines[i]}: duplicate_id (id {ids[int(i)]})" for i in row_pos[: skips.keep]]
    skips.note("duplicate_id", len(row_pos), examples)
    return table.filter(pa.array(~dup))


def decontaminate(table: pa.Table, exclude: Sequence[str | os.PathLike]) -> tuple[pa.Table, int, list[str]]:
    """Drop candidates whose question or question+answer fingerprint occurs in the exclude files."""
    if not exclude:
        return table, 0, []
    q_keys, qa_keys = read_exclude(exclude)
    hit = pc.or_(pc.is_in(table.column("dedup_key_q"), value_set=q_keys),
                 pc.is_in(table.column("dedup_key"), value_set=qa_keys)).to_numpy(zero_copy_only=False)
    dropped = table.column("qa_uid").filter(pa.array(hit)).to_pylist()[:5]
    return table.filter(pa.array(~hit)), int(hit.sum()), dropped


# ---------------------------------------------------------------- public API
def ingest(
    onevision: Sequence[str | os.PathLike] = (),
    video: Sequence[str | os.PathLike] = (),
    pool: Sequence[str | os.PathLike] = (),
    exclude: Sequence[str | os.PathLike] = (),
    target_frames: int = 32,
    strict: bool = False,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    media_root: str | os.PathLike | None = None,
    workers: int | None = None,
    check_media: bool = False,
    source_groups: dict[str, str] | None = None,
    frames_fps: float = 1.0,
    media_dir: str | os.PathLike | None = None,
) -> IngestResult:
    """Pool files -> candidate table + profile; writes ``out_dir/candidates.parquet`` and
    ``out_dir/profile.json`` atomically when ``out_dir`` is given.

    Bad rows are skipped and counted by reason (first examples with file:line); ``strict=True``
    turns any skip into a ``GdoError``. A missing file or a file with no usable row is an error.
    Embedded media bytes (Hugging Face Parquet / datasets) are written to ``media_dir`` (default
    ``out_dir/media``), one content-addressed file per distinct blob.
    """
    if media_dir is None and out_dir is not None:
        media_dir = Path(out_dir) / "media"
    opts = IngestOptions(target_frames=int(target_frames),
                         media_root=None if media_root is None else os.path.abspath(media_root),
                         frames_fps=float(frames_fps), source_groups=source_groups,
                         media_dir=None if media_dir is None else os.path.abspath(media_dir))
    inputs = ([("onevision", p) for p in onevision] + [("video", p) for p in video]
              + [("pool", p) for p in pool])
    table, skips, stats = build_table(inputs, opts, workers=workers, progress=progress)
    table = _drop_duplicate_ids(table, skips)
    if check_media:
        table = _drop_missing_media(table, skips)
    if strict and skips.total:
        first = next(ex for r in sorted(skips.examples) for ex in skips.examples[r])
        raise GdoError(f"--strict: {skips.total} bad input rows ({skips.summary()}); first: {first}")
    table, n_decon, decon_examples = decontaminate(table, exclude)
    if table.num_rows == 0:
        raise GdoError("no candidates left after skipping bad rows and decontamination")
    from gdo_opt.ingest.profile import build_profile  # profile.py reads this module's field lists

    profile = build_profile(table)
    profile["ingest"] = {
        "files": stats, "target_frames": opts.target_frames, "skipped": dict(sorted(skips.counts.items())),
        "skipped_examples": {r: list(v) for r, v in sorted(skips.examples.items())},
        "decontaminated": n_decon, "decontaminated_examples": decon_examples,
        "exclude": [str(p) for p in exclude],
    }
    result = IngestResult(table, profile, skips, n_decon)
    if out_dir is not None:
        from gdo_opt.atomic import write_json, write_parquet

        out = Path(out_dir)
        result.paths = {"candidates": out / "candidates.parquet", "profile": out / "profile.json"}
        write_parquet(result.paths["candidates"], table)
        write_json(result.paths["profile"], profile)
    return result


def _drop_missing_media(table: pa.Table, skips: SkipLog) -> pa.Table:
    """Optional (``--check-media``): skip candidates whose media files do not exist (one stat per path)."""
    media = table.column("media").combine_chunks()
    flat = pc.list_flatten(media)
    enc = pc.dictionary_encode(flat)
    exists = np.array([os.path.exists(p) for p in enc.dictionary.to_pylist()], dtype=bool)
    missing_flat = ~exists[enc.indices.to_numpy()]
    parent = pc.list_parent_indices(media).to_numpy()
    missing = np.bincount(parent, weights=missing_flat, minlength=table.num_rows) > 0
    if missing.any():
        idx = np.flatnonzero(missing)
        files, lines = table.column("file"), table.column("line")
        # counted per candidate: one row's turns share media
        skips.note("missing_media", len(idx), [f"{files[int(i)]}:{lines[int(i)]}: missing_media" for i in idx[: skips.keep]])
    return table.filter(pa.array(~missing))


def load_candidates(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``candidates.parquet`` into pandas, checking it is a candidate table."""
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        p = p / "candidates.parquet"
    if not p.exists():
        raise GdoError(f"{path}: no such file (run `gdo-opt ingest` first)")
    try:
        table = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as error:
        raise GdoError(f"{p}: not a readable Parquet file ({error})") from error
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise GdoError(f"{p}: not a candidate table (missing columns {', '.join(missing)})")
    return table.to_pandas()
