"""Benchmark: ingest of a Hugging Face-style Parquet with embedded image bytes (LLaVA-OneVision's
layout) vs the usual script: a per-row loop that writes each image to a file, writes JSONL, and
ingests the JSONL.

    .venv/bin/python experiments/bench_hf_ingest.py --rows 20000

Both sides write one file per distinct image (content-addressed for ours, one per row id for
the loop) and produce the same candidate rows; prints time, rows/s and the ratio side by side.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

MSG = pa.struct([("from", pa.string()), ("value", pa.string())])
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def make_parquet(path: Path, rows: int, distinct: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pngs = []
    for _ in range(distinct):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    writer = None
    for start in range(0, rows, 5000):
        ids = range(start, min(rows, start + 5000))
        table = pa.table({
            "id": [f"r{i}" for i in ids],
            "image": pa.array([{"bytes": pngs[i % distinct], "path": f"{i}.png"} for i in ids], IMAGE),
            "conversations": pa.array([[{"from": "human", "value": f"<image>\nWhat is in picture {i}?"},
                                        {"from": "gpt", "value": f"Noise pattern {i % 97}."}] for i in ids],
                                      pa.list_(MSG)),
            "data_source": ["bench" for _ in ids],
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def ours(src: Path, out: Path) -> int:
    from gdo_opt.ingest.pool import ingest

    return ingest(onevision=[src], out_dir=out, progress=False).table.num_rows


def loop(src: Path, out: Path) -> int:
    """The per-row script: write every image, write JSONL, ingest the JSONL."""
    from gdo_opt.ingest.pool import ingest

    media = out / "media"
    media.mkdir(parents=True)
    with open(out / "pool.jsonl", "w", encoding="utf-8") as handle:
        for batch in pq.ParquetFile(src).iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                path = media / f"{row['id']}.png"
                path.write_bytes(row["image"]["bytes"])
                handle.write(json.dumps({"id": row["id"], "images": [str(path)],
                                         "conversations": row["conversations"],
                                         "data_source": row["data_source"]}) + "\n")
    return ingest(onevision=[out / "pool.jsonl"], out_dir=out / "run", progress=False).table.num_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--distinct", type=int, default=5000, help="distinct images (default 5000)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hf-"))
    try:
        src = work / "ov.parquet"
        make_parquet(src, args.rows, args.distinct)
        size = src.stat().st_size / 1e6
        times = {}
        for name, fn in (("gdo-opt ingest (HF Parquet)", ours), ("per-row loop + JSONL ingest", loop)):
            start = time.perf_counter()
            n = fn(src, work / name.split()[0])
            times[name] = time.perf_counter() - start
            print(f"{name:32s} {times[name]:7.2f} s  {n / times[name]:9,.0f} rows/s  ({n:,} candidates)")
        a, b = times.values()
        print(f"{args.rows:,} rows, {args.distinct:,} distinct 64x64 PNGs, {size:.1f} MB Parquet; ratio {b / a:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
