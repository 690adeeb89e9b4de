"""Demo pool: deterministic bytes, realistic content, and motion that matches truth.json."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from gdo_opt.cli import main
from gdo_opt.ingest.demo_pool import make_demo_pool
from gdo_opt.ingest.pool import ingest


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_pool(tmp_path_factory.mktemp("demo"), seed=3, n_images=120, n_videos=24)


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(demo, tmp_path):
    again = make_demo_pool(tmp_path / "again", seed=3, n_images=120, n_videos=24)
    assert _digest(demo.root) == _digest(again.root)
    other = make_demo_pool(tmp_path / "other", seed=4, n_images=120, n_videos=24)
    assert (other.onevision.read_bytes() != demo.onevision.read_bytes())


def test_content_is_realistic(demo):
    res = ingest(onevision=[demo.onevision], video=[demo.video], exclude=[demo.bench], progress=False)
    df = res.to_pandas()
    assert res.skipped == {}
    assert len(df) + res.decontaminated == demo.n_qa
    assert 0 < res.decontaminated <= 8  # leaked benchmark questions are found, not half the pool
    assert df["dedup_key"].duplicated().any()  # exact duplicates
    assert (df["turn"] > 0).any()  # multi-turn rows
    assert set(df["question_form"]) == {"MCQ", "Open"}
    assert set(df["temporal_category"]) == {"temporal", "static"}
    assert set(df["bucket"]) == {"image_qa", "short_video"}
    per_video = df[df["bucket"] == "short_video"].groupby("video_uid").size()
    assert per_video.min() >= 3 and per_video.max() <= 8
    counts = df["source"].value_counts()
    assert len(counts) >= 8 and counts.iloc[0] > 4 * counts.iloc[-1]  # skewed, long tail
    rows = [json.loads(line) for line in demo.onevision.read_text().splitlines()]
    assert {"messages", "conversations"} <= {k for r in rows for k in r}  # several spellings
    for path in df["media"].iloc[0]:
        assert Image.open(path).size == (64, 64)


def test_motion_matches_truth(demo):
    truth = json.loads(demo.truth.read_text())
    assert {t["speed_label"] for t in truth.values()} == {"static", "slow", "fast"}
    rows = [json.loads(line) for line in demo.video.read_text().splitlines()]
    frames = {r["video_id"]: r["images"] for r in rows}
    diff = {}
    for vid, t in truth.items():
        paths = frames[vid]
        assert len(paths) == t["n_frames"] and 8 <= len(paths) <= 16
        first = np.asarray(Image.open(demo.root / paths[0]), dtype=np.float64)
        last = np.asarray(Image.open(demo.root / paths[-1]), dtype=np.float64)
        diff[vid] = np.abs(last - first).mean()
    by = {label: [diff[v] for v, t in truth.items() if t["speed_label"] == label] for label in ("static", "slow", "fast")}
    assert max(by["static"]) < 3.0 < min(by["slow"] + by["fast"])
    assert np.mean(by["fast"]) > np.mean(by["slow"])


def test_cli_make_demo_pool(tmp_path, capsys):
    assert main(["make-demo-pool", str(tmp_path / "p"), "--images", "10", "--videos", "3", "--seed", "1"]) == 0
    assert (tmp_path / "p" / "video.jsonl").exists() and (tmp_path / "p" / "truth.json").exists()
    assert "QA pairs" in capsys.readouterr().err
    assert main(["make-demo-pool", str(tmp_path / "q"), "--videos", "0"]) == 2
    assert capsys.readouterr().err.startswith("gdo-opt make-demo-pool: error: argument --videos: 0: must be >= 1")
