"""ms-swift trains on rows that `gdo-opt select` exported from the demo pool (not hand-written rows):
image rows and frame-list video rows, in both export formats (marker ``heavy``: make test-heavy).

* ``--frames-as images``: a clip is one ``<image>`` per frame. The tiny LLaVA-1.5 model trains on the
  whole export (image rows + clips) on CPU; the test checks the clips really reached the model (the
  per-sample token counts of the clips exceed those of the image rows by their frame count).
* ``--frames-as video``: a clip is one ``<video>`` whose entry is the frame list. ms-swift's video
  templates (Qwen-VL) load clips through ``qwen_vl_utils`` / torchvision, and PyPI ships only CUDA
  builds of torchvision, so on CPU the test checks that ms-swift loads these rows as dataset rows with
  the frame list under ``videos`` and trains the image rows of the same export; docs/comparison.md says so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy

pytest.importorskip("swift", reason="needs the heavy env: scripts/setup-heavy.sh")

from gdo_opt.cli import main  # noqa: E402

from .test_train_eval_real import OFFLINE_ENV, write_toml  # noqa: E402
from .tiny_llava import make_tiny_llava  # noqa: E402


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Demo pool -> ingest -> model-free metrics -> `gdo-opt select` twice (both export formats)."""
    import pandas as pd

    from gdo_opt.atomic import write_jsonl
    from gdo_opt.goal.metrics import proxy_metrics
    from gdo_opt.ingest.demo_pool import make_demo_pool
    from gdo_opt.ingest.pool import ingest

    root = tmp_path_factory.mktemp("exported")
    pool = make_demo_pool(root / "pool", seed=0, n_images=24, n_videos=6)
    ingest(onevision=[pool.onevision], video=[pool.video], out_dir=root / "cand", progress=False)
    frame = pd.read_parquet(root / "cand" / "candidates.parquet")
    metrics = root / "metrics.jsonl"
    write_jsonl(metrics, json.loads(proxy_metrics(frame).to_json(orient="records", double_precision=10)))
    out = {}
    for frames_as in ("images", "video"):
        folder = root / f"select-{frames_as}"
        assert main(["select", "--candidates", str(root / "cand"), "--metrics", str(metrics), "--preset", "diverse",
                     "--target-count", "16", "--frames-as", frames_as, "--out", str(folder), "--no-html"]) == 0
        out[frames_as] = [json.loads(line) for line in (folder / "gdo_1x.jsonl").read_text().splitlines()]
    return root, out


def _train(root: Path, name: str, rows: list[dict]) -> Path:
    data = root / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = root / "tiny-llava"
    if not (model / "config.json").is_file():
        make_tiny_llava(model)
    run = root / "runs" / name
    config = write_toml(root / f"{name}.toml", "train", {
        "model": str(model), "model_type": "llava1_5_hf", "template": "llava1_5_hf", "dataset": [str(data)],
        "output_dir": str(run), "train_type": "full", "torch_dtype": "float32", "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "saves_per_epoch": 1, "max_length": 2048,
        "freeze_vit": False, "python": sys.executable, "env": OFFLINE_ENV,
        "extra_args": ["--use_hf", "true", "--report_to", "none", "--logging_steps", "1",
                       "--dataloader_num_workers", "0", "--dataset_num_proc", "1"],
    })
    assert main(["train", "--config", str(config), "--quiet"]) == 0, (run / "train.log").read_text()[-3000:]
    return run


def _losses(run: Path) -> list[float]:
    state = json.loads(sorted(run.glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


def test_export_has_image_rows_and_frame_list_clips_in_both_formats(exports):
    _, out = exports
    for frames_as, rows in out.items():
        clips = [r for r in rows if r["video_uid"]]
        images = [r for r in rows if not r["video_uid"]]
        assert clips and images, frames_as
        for r in images:
            assert r["messages"][0]["content"].startswith("<image>") and len(r["images"]) == 1
        for r in clips:
            if frames_as == "images":
                n = len(r["images"])
                assert n > 1 and r["messages"][0]["content"].startswith("<image>" * n) and "videos" not in r
            else:
                assert r["messages"][0]["content"].startswith("<video>") and len(r["videos"]) == 1
                assert isinstance(r["videos"][0], list) and len(r["videos"][0]) > 1  # the frame list


def test_swift_trains_on_the_image_per_frame_export(exports):
    root, out = exports
    rows = out["images"]
    run = _train(root, "frames-as-images", rows)
    losses = _losses(run)
    assert len(losses) == -(-len(rows) // 2) and all(loss == loss for loss in losses)
    meta = json.loads((run / "gdo_train.json").read_text())
    assert meta["dataset_size"] == len(rows)


def test_swift_reads_the_video_export_and_trains_its_image_rows(exports):
    from swift.dataset import load_dataset

    root, out = exports
    rows = out["video"]
    path = root / "video-export.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train, _ = load_dataset([str(path)], split_dataset_ratio=0.0, num_proc=1, use_hf=True)
    loaded = [train[i] for i in range(len(train))]
    assert len(loaded) == len(rows)
    clips = [r for r in loaded if r.get("videos")]
    assert len(clips) == sum(1 for r in rows if r["video_uid"])
    assert all(len(r["videos"]) == 1 and len(r["videos"][0]) > 1 for r in clips)
    image_rows = [r for r in rows if not r["video_uid"]]
    run = _train(root, "video-export-image-rows", image_rows)
    assert len(_losses(run)) == -(-len(image_rows) // 2)
