"""Shared fixtures of the reliability tests: a small candidate table, GDO metrics, bad files."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from gdo_opt.atomic import write_parquet

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_select", ROOT / "experiments" / "bench_select.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

N = 1500


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Files every bad-input case needs (written once per session)."""
    root = tmp_path_factory.mktemp("rel")
    frame = bench.make_candidates(N, seed=1)
    write_parquet(root / "candidates.parquet", frame)
    metrics = bench.make_gdo_metrics(frame, seed=1, missing=0.0)
    bench.write_jsonl_fast(metrics, root / "metrics.jsonl")
    inf = metrics.copy()
    inf.loc[inf.index[::4], "vds"] = np.inf  # 25% of the pool, as in the report of issue 16
    _write_json_lines(inf, root / "metrics_inf.jsonl")
    nomatch = metrics.copy()
    nomatch["qa_uid"] = "zz::" + nomatch["qa_uid"]
    bench.write_jsonl_fast(nomatch, root / "metrics_nomatch.jsonl")
    bad_media = frame.copy()
    bad_media["media"] = [m[0] for m in bad_media["media"]]  # a string instead of a list
    write_parquet(root / "candidates_media_str.parquet", bad_media)
    (root / "a_file").write_text("x\n")
    (root / "folder").mkdir()
    (root / "latin1.toml").write_bytes(b'name = "caf\xe9"\n[score]\n')
    rows = [_ov_row(i) for i in range(6)]
    lines = [json.dumps(r).encode() for r in rows]
    lines[2] = lines[2].replace(b"What is", b"What \xff is")
    (root / "ov_nonutf8.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    rows[1]["images"] = [None, 3]
    rows[3]["id"] = ["a", 1]
    (root / "ov_types.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (root / "ov_good.jsonl").write_text("\n".join(json.dumps(_ov_row(i)) for i in range(6)) + "\n")
    _results(root / "run.csv", "gdo", "mme", [0.5, 0.6])
    _results(root / "base.csv", "uni", "mmstar", [0.4, 0.5])
    _results(root / "base_inf.csv", "uni", "mme", [0.4, "inf"])
    _shards(root, frame)
    return root


def read_only_dir(root: Path) -> Path:
    """A folder this process cannot write into (root ignores permissions: use /proc then)."""
    if os.geteuid() == 0:
        return Path("/proc/gdo-opt-read-only")
    ro = root / "read_only"
    ro.mkdir(exist_ok=True)
    ro.chmod(0o555)
    return ro / "out"


def _write_json_lines(frame, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in frame.to_dict(orient="records"):
            handle.write(json.dumps(row) + "\n")  # json writes inf as Infinity, as Python tools do


def _ov_row(i: int) -> dict:
    return {"id": f"r{i}", "images": [f"img{i}.jpg"], "data_source": "demo",
            "conversations": [{"from": "human", "value": f"<image>\nWhat is {i}?"},
                              {"from": "gpt", "value": f"answer {i}"}]}


def _results(path: Path, run: str, task: str, accuracy: list) -> None:
    lines = ["run,checkpoint,samples_seen,task,subtask,metric,accuracy"]
    lines += [f"{run},checkpoint-{k},{100 * (k + 1)},{task},,acc,{a}" for k, a in enumerate(accuracy)]
    path.write_text("\n".join(lines) + "\n")


def _shards(root: Path, frame) -> None:
    """Shard folders for merge: one with a chunk missing, one extracted from another table."""
    import pyarrow as pa

    from gdo_opt.descriptors.shard_checks import uid_digest

    uids = sorted(frame["qa_uid"].astype(str))
    half = len(uids) // 2
    for name, digest, chunks in (("shards_gap", uid_digest(uids), [0]), ("shards_other", "0" * 16, [0, 1])):
        folder = root / name
        folder.mkdir()
        for c in chunks:
            part = uids[:half] if c == 0 else uids[half:]
            write_parquet(folder / f"rank000-chunk{c:06d}.parquet",
                          pa.table({"qa_uid": part, "loss_video": np.ones(len(part)), "error": [""] * len(part)}))
        manifest = {"version": 1, "candidates": str(root / "candidates.parquet"), "n_candidates": len(uids),
                    "qa_uid_digest": digest, "n_chunks": 2}
        (folder / "manifest.json").write_text(json.dumps(manifest))
