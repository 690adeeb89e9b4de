"""Real runs (marker ``heavy``, environment from scripts/setup-heavy.sh): ms-swift trains a tiny offline
model on a tiny exported subset and writes checkpoints; lmms-eval evaluates every checkpoint on the
repo's local task (tests/data/lmms_tasks/gdo_tiny, no downloads); the rows land in the tidy table and
`gdo-opt compare` reads it. Run: make test-heavy.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.heavy

pytest.importorskip("swift", reason="needs the heavy env: scripts/setup-heavy.sh")
pytest.importorskip("lmms_eval", reason="needs the heavy env: scripts/setup-heavy.sh")

from gdo_opt.cli import main  # noqa: E402

from .tiny_llava import make_tiny_llava  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 20)}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}


def write_subset(folder: Path, n: int = 16) -> Path:
    """A tiny subset in the exporter's ms-swift JSONL format, with small PNGs drawn by Pillow."""
    from PIL import Image

    (folder / "media").mkdir(parents=True, exist_ok=True)
    names = list(COLORS)
    lines = []
    for i in range(n):
        color = names[i % len(names)]
        image = folder / "media" / f"{i:03d}.png"
        Image.new("RGB", (32, 32), COLORS[color]).save(image)
        lines.append(json.dumps({
            "messages": [{"role": "user", "content": "<image>What color is the image? A. red B. green C. blue "
                                                     "D. yellow\nAnswer with the option's letter."},
                         {"role": "assistant", "content": "ABCD"[i % 4]}],
            "images": [str(image)],
            "qa_uid": f"ov::tiny{i}::t0",
            "video_uid": "",
            "meta": {"bucket": "image_qa", "source": "heavy-test"},
        }))
    path = folder / "subset_1x.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def write_toml(path: Path, section: str, values: dict) -> Path:
    path.write_text(f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()))
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("heavy")
    model = make_tiny_llava(root / "tiny-llava")
    subset = write_subset(root / "data")
    config = write_toml(root / "train.toml", "train", {
        "model": str(model),
        "model_type": "llava1_5_hf",
        "template": "llava1_5_hf",
        "dataset": [str(subset)],
        "output_dir": str(root / "runs" / "gdo-1x"),
        "train_type": "full",
        "torch_dtype": "float32",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "learning_rate": 1e-3,
        "saves_per_epoch": 2,
        "max_length": 512,
        "freeze_vit": False,
        "python": sys.executable,
        "extra_args": ["--use_hf", "true", "--report_to", "none", "--logging_steps", "1",
                       "--dataloader_num_workers", "0", "--dataset_num_proc", "1"],
        "env": OFFLINE_ENV,
    })
    assert main(["train", "--config", str(config), "--quiet"]) == 0
    return root, config, root / "runs" / "gdo-1x"


def test_swift_trains_and_writes_checkpoints(trained_run, capsys):
    root, config, run = trained_run
    # 16 samples, 2 per step x 2 accumulation -> 4 steps; every 1/2 epoch -> checkpoints 2 and 4.
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    for ckpt in run.glob("checkpoint-*"):
        assert (ckpt / "model.safetensors").is_file() and (ckpt / "trainer_state.json").is_file()
    state = json.loads((run / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert len(losses) == 4 and all(loss == loss for loss in losses)  # real, finite training losses
    meta = json.loads((run / "gdo_train.json").read_text())
    assert meta["samples_per_step"] == 4 and meta["save_steps"] == 2 and meta["dataset_size"] == 16
    log = (run / "train.log").read_text()
    assert log.startswith("$ ") and "swift sft" in log.splitlines()[0]
    # Resume picks the latest checkpoint.
    assert main(["train", "--config", str(config), "--dry-run", "--resume"]) == 0
    assert f"--resume_from_checkpoint {run / 'checkpoint-4'}" in capsys.readouterr().out


def test_lmms_eval_sweeps_checkpoints_into_table(trained_run, monkeypatch):
    root, _, run = trained_run
    out = root / "eval" / "gdo-1x"
    hf_home = root / "hf-home"
    config = write_toml(root / "eval.toml", "eval", {
        "model": "llava_hf",
        "model_args": {"dtype": "float32", "device_map": "cpu"},
        "target": str(run),
        "run_name": "gdo-1x",
        "tasks": ["gdo_tiny"],
        "include_path": str(REPO / "tests" / "data" / "lmms_tasks"),
        "output_dir": str(out),
        "device": "cpu",
        "python": sys.executable,
        "env": OFFLINE_ENV | {"HF_HOME": str(hf_home)},
    })
    monkeypatch.chdir(REPO)  # the task's data_files are relative to the repository root
    assert main(["eval", "--config", str(config), "--quiet"]) == 0
    table = pd.read_parquet(out / "results.parquet")
    assert list(table.columns) == ["run", "checkpoint", "samples_seen", "task", "subtask", "metric", "accuracy"]
    assert sorted(set(zip(table["checkpoint"], table["samples_seen"]))) == [("checkpoint-2", 8), ("checkpoint-4", 16)]
    assert set(table["subtask"]) == {"", "gdo_tiny_warm", "gdo_tiny_cool"}
    assert set(table["metric"]) == {"accuracy"} and table["accuracy"].between(0, 1).all()
    overall = table[table["subtask"] == ""].set_index("checkpoint")["accuracy"]
    subs = table[table["subtask"] != ""].groupby("checkpoint")["accuracy"].mean()
    assert (overall - subs).abs().max() < 1e-9  # equal-size subtasks: aggregate = their mean
    samples = list((out / "checkpoints" / "checkpoint-4" / "lmms_eval").glob("**/*_samples_gdo_tiny_warm.jsonl"))
    assert samples and len(samples[0].read_text().splitlines()) == 4
    csv = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert len(csv) == len(table) == 6

    # Finished checkpoints are skipped: a second run does not call lmms-eval again.
    logs = {p: p.stat().st_size for p in out.glob("checkpoints/*/lmms_eval.log")}
    assert main(["eval", "--config", str(config), "--quiet"]) == 0
    assert {p: p.stat().st_size for p in out.glob("checkpoints/*/lmms_eval.log")} == logs

    # compare reads the real table (a relabelled copy plays the baseline).
    base = table.assign(run="uni-10x", samples_seen=table["samples_seen"] * 10)
    base.to_csv(root / "baseline.csv", index=False)
    assert main(["compare", str(out), str(root / "baseline.csv"), "--out", str(root / "cmp")]) == 0
    summary = json.loads((root / "cmp" / "comparison.json").read_text())
    overall_match = [m for m in summary["peak_match"] if m["subtask"] == ""][0]
    assert overall_match["baseline_samples"] == 160
    assert (root / "cmp" / "curves.png").stat().st_size > 1000
    shutil.rmtree(hf_home, ignore_errors=True)


def test_lora_run_is_merged_and_evaluated(trained_run, monkeypatch):
    """LoRA: ms-swift saves adapters only; eval merges them with `swift export` and evaluates the merge."""
    root, _, _ = trained_run
    model = root / "tiny-llava"
    run = root / "runs" / "gdo-1x-lora"
    config = write_toml(root / "train-lora.toml", "train", {
        "model": str(model), "model_type": "llava1_5_hf", "template": "llava1_5_hf",
        "dataset": str(root / "data" / "subset_1x.jsonl"), "output_dir": str(run), "train_type": "lora",
        "lora_rank": 4, "lora_alpha": 8, "torch_dtype": "float32", "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 2, "learning_rate": 1e-3, "saves_per_epoch": 1, "max_length": 512,
        "python": sys.executable, "env": OFFLINE_ENV,
        "extra_args": ["--use_hf", "true", "--report_to", "none", "--dataloader_num_workers", "0"],
    })
    assert main(["train", "--config", str(config), "--quiet"]) == 0
    ckpt = run / "checkpoint-2"
    assert (ckpt / "adapter_model.safetensors").is_file() and not (ckpt / "config.json").exists()
    out = root / "eval" / "gdo-1x-lora"
    eval_config = write_toml(root / "eval-lora.toml", "eval", {
        "model": "llava_hf", "model_args": {"dtype": "float32", "device_map": "cpu"}, "target": str(run),
        "tasks": "gdo_tiny", "include_path": str(REPO / "tests" / "data" / "lmms_tasks"),
        "output_dir": str(out), "device": "cpu", "python": sys.executable, "export_args": ["--use_hf", "true"],
        "env": OFFLINE_ENV | {"HF_HOME": str(root / "hf-home-lora")},
    })
    monkeypatch.chdir(REPO)
    assert main(["eval", "--config", str(eval_config), "--quiet"]) == 0
    table = pd.read_parquet(out / "results.parquet")
    assert set(table["checkpoint"]) == {"checkpoint-2"} and set(table["samples_seen"]) == {16}
    assert len(table) == 3 and table["run"].eq("gdo-1x-lora").all()
    log = (out / "checkpoints" / "checkpoint-2" / "lmms_eval.log").read_text()
    assert "Successfully merged LoRA" in log
    assert not (out / "checkpoints" / "checkpoint-2" / "merged").exists()  # keep_merged = false
