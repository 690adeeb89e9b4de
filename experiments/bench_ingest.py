"""Benchmark: `gdo_opt.ingest.pool.ingest` vs a plain per-line `json.loads` loop doing the same work.

    .venv/bin/python experiments/bench_ingest.py              # 1,000,000 QA pairs
    .venv/bin/python experiments/bench_ingest.py --rows 100000  # quick run

Writes a synthetic LLaVA-style JSONL (image + video rows, 3 message spellings, text from
`gdo_opt.ingest.demo_pool`), then runs each implementation in its own subprocess (so peak RSS is its own),
checks that both produce the same candidate table, and prints time, rows/s, peak memory and the
speed ratio side by side.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gdo_opt.ingest import pool
from gdo_opt.ingest import schema as P
from gdo_opt.ingest import text as pool_text

TARGET = 32


def make_pool(work: Path, n_pairs: int, seed: int = 0) -> tuple[list[tuple[str, Path]], int, int]:
    """Tile ~5,000 pairs of synth text rows with fresh ids up to ``n_pairs`` pairs, split into a
    OneVision file (image rows) and a LLaVA-Video file (16-96 frame paths per row)."""
    from gdo_opt.ingest.demo_pool import demo_text_rows

    template = demo_text_rows(5000, seed=seed)
    dumped = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in template]
    pairs_per = [len(r.get("messages", r.get("conversations", []))) // 2 for r in template]
    is_video = ["video_id" in r for r in template]
    files = {"onevision": [], "video": []}
    rows, pairs, i = 0, 0, 0
    while pairs < n_pairs:
        k = i % len(template)
        files["video" if is_video[k] else "onevision"].append(dumped[k].replace(f'"id":"r{k}"', f'"id":"r{i}"', 1))
        pairs += pairs_per[k]
        rows += 1
        i += 1
    inputs = []
    for kind, lines in files.items():
        path = work / f"bench_{kind}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        inputs.append((kind, path))
    return inputs, rows, pairs


# ---------------------------------------------------------------- the plain per-line baseline
def baseline(inputs: list[tuple[str, str]], out: str) -> int:
    """One Python pass per line (json.loads, loops over turns, `re`, np.linspace per row);
    the same outputs as ingest() for these files."""
    tag = re.compile(pool_text.TAG_RE)
    norm = re.compile(r"[\W_]+")
    temporal = re.compile(P.TEMPORAL_RE, re.IGNORECASE)
    mcq = re.compile(P.MCQ_RE)
    cols: dict[str, list] = {c: [] for c in P.COLUMNS}
    nq_all, na_all = [], []
    seen: set[str] = set()

    def label(x, edges, labels):
        return labels[bisect.bisect_left(edges, x)]

    for kind, path in inputs:
        root = os.path.dirname(os.path.abspath(path))
        name, stem, prefix = Path(path).name, Path(path).stem, P.PREFIX[kind]

        def res(p: str, root=root) -> str:
            return p if p.startswith("/") or "://" in p else f"{root}/{p}"

        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    continue
                imgs = obj.get("images") or []
                if not imgs:
                    continue  # (the benchmark files have no video-file rows)
                if kind == "video":
                    n = len(imgs)
                    idx = np.rint(np.linspace(0, n - 1, TARGET)).astype(int) if n > TARGET else range(n)
                    media, media_kind, n_frames = [res(imgs[i]) for i in idx], "frames", n
                    secs = float(obj["duration"]) if obj.get("duration") is not None else n / 1.0
                    dur = label(secs, P.DUR_EDGES, P.DUR_LABELS)
                    bucket = "short_video"
                else:
                    media, media_kind, n_frames, dur, bucket = [res(imgs[0])], "image", 1, "image", "image_qa"
                msgs = [m for m in (obj.get("messages") or obj.get("conversations") or [])
                        if str(m.get("role", m.get("from", ""))).strip().lower() not in P.SYSTEM_ROLES]
                roles = [str(m.get("role", m.get("from", ""))).strip().lower() for m in msgs]
                ok = len(msgs) > 0 and len(msgs) % 2 == 0 and all(
                    (r in P.USER_ROLES) if i % 2 == 0 else (r in P.ASSISTANT_ROLES) for i, r in enumerate(roles))
                if not ok:
                    continue
                row_id = str(obj["id"]) if obj.get("id") not in (None, "") else f"{name}-L{line_no}"
                if (prefix, row_id) in seen:
                    continue
                seen.add((prefix, row_id))
                video_uid = (obj.get("video_id") or row_id) if kind == "video" else ""
                src = (obj.get("data_source") or "").strip() or stem
                group = pool_text.default_source_group(src)
                for k in range(len(msgs) // 2):
                    q = tag.sub("", msgs[2 * k].get("content", msgs[2 * k].get("value")) or "").strip()
                    a = tag.sub("", msgs[2 * k + 1].get("content", msgs[2 * k + 1].get("value")) or "").strip()
                    if not a:
                        continue
                    nq, na = norm.sub(" ", q.lower()).strip(), norm.sub(" ", a.lower()).strip()
                    strata = [bucket, dur, "temporal" if temporal.search(q) else "static",
                              "MCQ" if mcq.search(q) else "Open",
                              label(len(nq.split()), P.Q_LEN_EDGES, P.Q_LEN_LABELS),
                              label(len(na.split()), P.A_LEN_EDGES, P.A_LEN_LABELS)]
                    nq_all.append(nq)
                    na_all.append(na)
                    values = {"qa_uid": f"{prefix}::{row_id}::t{k}", "row_id": row_id, "turn": k,
                              "video_uid": video_uid, "bucket": bucket, "question": q, "answer": a, "media": media,
                              "media_kind": media_kind, "n_frames": n_frames, "source": src, "source_group": group,
                              "duration_bucket": dur, "temporal_category": strata[2], "question_form": strata[3],
                              "q_len_bucket": strata[4], "a_len_bucket": strata[5], "stratum": "|".join(strata),
                              "file": path, "line": line_no}
                    for c, v in values.items():
                        cols[c].append(v)
    # the same hash function, applied once to all strings
    cols["dedup_key"], cols["dedup_key_q"] = pool_text.fingerprints(nq_all, na_all)
    types = {"turn": pa.int32(), "n_frames": pa.int32(), "line": pa.int64(), "media": pa.large_list(pa.string())}
    table = pa.table({c: pa.array(cols[c], types.get(c, pa.string())) for c in P.COLUMNS})
    pq.write_table(table, out)
    return table.num_rows


def run_ours(inputs: list[tuple[str, str]], out: str, workers: int | None) -> int:
    files = {kind: [p for k, p in inputs if k == kind] for kind in ("onevision", "video")}
    res = pool.ingest(**files, progress=False, workers=workers)
    pq.write_table(res.table, out)
    return res.table.num_rows


def _child(args: argparse.Namespace) -> None:
    usage, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime
    t0 = time.perf_counter()
    inputs = json.loads(args.file)
    n = baseline(inputs, args.out) if args.impl == "baseline" else run_ours(inputs, args.out, args.workers)
    seconds = time.perf_counter() - t0
    usage, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime - cpu0
    # worker processes (if any) run beside the parent: count parent + largest worker, an upper bound
    peak_mb = (usage.ru_maxrss + kids.ru_maxrss) / 1024
    print(json.dumps({"impl": args.impl, "seconds": seconds, "cpu": cpu, "candidates": n, "peak_mb": peak_mb}))


def _spawn(impl: str, inputs: list, out: Path, workers: int | None) -> dict:
    spec = json.dumps([(k, str(p)) for k, p in inputs])
    cmd = [sys.executable, __file__, "--child", impl, "--file", spec, "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{impl} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="QA pairs in the synthetic pool (default 1M)")
    ap.add_argument("--workers", type=int, default=None, help="ingest worker processes (default: min(4, cores))")
    ap.add_argument("--keep", default=None, help="folder to keep the pool and outputs in (default: temp)")
    ap.add_argument("--child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.impl = args.child
        _child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        pool, n_rows, n_pairs = make_pool(work, args.rows)
        size_mb = sum(p.stat().st_size for _, p in pool) / 2**20
        print(f"pool: {n_rows:,} rows, {n_pairs:,} QA pairs, {size_mb:,.0f} MB "
              f"(generated in {time.perf_counter() - t0:.1f} s); cores: {os.cpu_count()}")
        ours = _spawn("ours", pool, work / "ours.parquet", args.workers)
        base = _spawn("baseline", pool, work / "baseline.parquet", None)
        a, b = pq.read_table(work / "ours.parquet"), pq.read_table(work / "baseline.parquet")
        same = a.num_rows == b.num_rows and all(
            pc.all(pc.equal(a.column(c), b.column(c))).as_py() if c != "media" else a.column(c).equals(b.column(c))
            for c in P.COLUMNS)
        print(f"{'impl':<10}{'wall s':>10}{'CPU s':>10}{'QA rows/s':>14}{'peak RSS MB':>14}")
        for r in (ours, base):
            print(f"{r['impl']:<10}{r['seconds']:>10.2f}{r['cpu']:>10.2f}{r['candidates'] / r['seconds']:>14,.0f}"
                  f"{r['peak_mb']:>14,.0f}")
        print(f"speedup: {base['seconds'] / ours['seconds']:.1f}x wall, {base['cpu'] / ours['cpu']:.1f}x CPU; "
              f"identical tables: {same} ({a.num_rows:,} candidates); load average {os.getloadavg()[0]:.1f}")
        if not same:
            raise SystemExit("the two implementations disagree")


if __name__ == "__main__":
    main()
