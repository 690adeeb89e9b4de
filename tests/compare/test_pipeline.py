"""`gdo-opt pipeline --dry-run` and the shipped recipe: every command of run_profile_pipeline.sh."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

import pytest

from gdo_opt.atomic import write_parquet
from gdo_opt.cli import main
from gdo_opt.compare.evaluate import load_eval_config
from gdo_opt.compare.goal_run import checkpoint_steps, plan_goal_run
from gdo_opt.compare.train import load_train_config, plan_training

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "experiments" / "configs" / "recipe"
_spec = importlib.util.spec_from_file_location("bench_select", ROOT / "experiments" / "bench_select.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _flags(command: str) -> dict[str, str]:
    parts = shlex.split(command)
    return {p: parts[i + 1] for i, p in enumerate(parts[:-1]) if p.startswith("--")}


def test_recipe_matches_the_published_env():
    """configs/train_qwen3_vl_8b_instruct.env + train_sft.sh, and configs/eval_longvideo.env."""
    cfg = load_train_config(RECIPE / "train_qwen3_vl_8b_instruct.toml")
    plan = plan_training(cfg, n_samples=18_536)
    flags = _flags(plan.shell())
    assert flags["--tuner_type"] == "full" and flags["--deepspeed"] == "zero2"
    assert flags["--learning_rate"] == "2e-05" and flags["--warmup_ratio"] == "0.1"
    assert flags["--weight_decay"] == "0.01" and flags["--max_grad_norm"] == "1.0"
    assert flags["--max_length"] == "8192" and flags["--freeze_vit"] == "false"
    assert flags["--freeze_aligner"] == "false" and flags["--freeze_llm"] == "false"
    assert flags["--per_device_train_batch_size"] == "1" and flags["--gradient_accumulation_steps"] == "1"
    assert flags["--split_dataset_ratio"] == "0.001" and flags["--num_train_epochs"] == "1"
    # train_sft.sh: epoch_steps = ceil(18536 / 8) = 2317; interval = 2317 / 5 (integer) = 463
    assert plan.save_steps == 463 and flags["--save_steps"] == "463" == flags["--eval_steps"]
    assert plan.env == {"NPROC_PER_NODE": "8", "MAX_PIXELS": "50176", "VIDEO_MAX_PIXELS": "50176",
                        "IMAGE_MAX_PIXELS": "50176"}
    assert cfg.dataset[0].endswith("outputs/temp_plus/gdo_1x.jsonl")  # what `gdo-opt build --out outputs` writes
    ev = load_eval_config(RECIPE / "eval_longvideo.toml")
    assert ev.tasks == ["mvbench", "videomme", "mlvu_test", "lvbench"] and ev.num_processes == 8
    assert ev.model_args == {"max_pixels": "602112", "interleave_visuals": "False", "max_num_frames": "32",
                             "fps": "1", "attn_implementation": "flash_attention_2"}
    assert ev.batch_size == 1 and ev.log_samples and ev.target == str(Path(cfg.output_dir))


def test_checkpoint_steps_every_fifth_and_last():
    cfg = load_train_config(RECIPE / "train_qwen3_vl_8b_instruct.toml")
    assert checkpoint_steps(750, cfg, plan_training(cfg, n_samples=750).save_steps) == [18, 36, 54, 72, 90, 94]
    assert checkpoint_steps(80, cfg, 2) == [2, 4, 6, 8, 10]


@pytest.fixture(scope="module")
def pool_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    frame = bench.make_candidates(3000, seed=4)
    write_parquet(folder / "candidates.parquet", frame)
    bench.write_jsonl_fast(bench.make_gdo_metrics(frame, seed=4), folder / "metrics.jsonl")
    return folder


def test_pipeline_dry_run_prints_every_command(pool_files, tmp_path, capsys):
    out = tmp_path / "outputs"
    code = main(["pipeline", "--goal", "temp", "--candidates", str(pool_files / "candidates.parquet"),
                 "--metrics", str(pool_files / "metrics.jsonl"), "--solver", "highs", "--out", str(out),
                 "--model", "/models/qwen3-vl", "--dry-run"])
    assert code == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if not x.startswith("#")]
    assert not out.exists()  # a dry run writes nothing
    select = shlex.split(lines[0])
    assert select[:2] == ["gdo-opt", "select"] and select[-4:] == ["--preset", "temp", "--out", str(out / "temp")]
    assert "--solver" in select and "--baseline-multiplier" not in select  # only the options given
    trains = [x for x in lines if " sft " in x]
    assert len(trains) == 2
    gdo, uni = (_flags(x) for x in trains)
    assert gdo["--dataset"] == str(out / "temp" / "gdo_1x.jsonl") and uni["--dataset"] == str(out / "temp" / "uni_10x.jsonl")
    assert gdo["--output_dir"] == str(out / "runs" / "temp" / "gdo")
    assert uni["--output_dir"] == str(out / "runs" / "temp" / "uni_10x")
    assert gdo["--model"] == uni["--model"] == "/models/qwen3-vl"
    same = {k for k in gdo if k not in ("--dataset", "--output_dir", "--save_steps", "--eval_steps")}
    assert all(gdo[k] == uni[k] for k in same)  # one recipe, only the data differs
    evals = [x for x in lines if "lmms_eval" in x]
    assert any("pretrained=" + str(out / "runs" / "temp" / "gdo" / "checkpoint-") in x for x in evals)
    assert any("pretrained=" + str(out / "runs" / "temp" / "uni_10x" / "checkpoint-") in x for x in evals)
    assert shlex.split(lines[-1])[:2] == ["gdo-opt", "compare"] and lines[-1].endswith(str(out / "runs" / "temp" / "compare"))


def test_pipeline_dry_run_uses_built_subsets_and_skips_uni(pool_files, tmp_path, capsys):
    out = tmp_path / "outputs"
    (out / "temp").mkdir(parents=True)
    row = json.dumps({"messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
                      "images": ["x.png"]})
    (out / "temp" / "gdo_1x.jsonl").write_text((row + "\n") * 40)
    (out / "temp" / "uni_10x.jsonl").write_text((row + "\n") * 400)
    assert main(["pipeline", "--goal", "temp", "--candidates", str(pool_files / "candidates.parquet"), "--out",
                 str(out), "--no-uni-train", "--no-uni-eval", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "sizes from the existing subsets" in text and "train gdo on 40 rows" in text
    assert "uni_10x" not in text.split("\n", 2)[2] and "gdo-opt compare" not in text
    run = plan_goal_run("temp", out, load_train_config(RECIPE / "train_qwen3_vl_8b_instruct.toml"),
                        load_eval_config(RECIPE / "eval_longvideo.toml"), run_uni_train=False)
    assert run.arms_trained == ("gdo",) and run.arms_evaluated == ("gdo", "uni_10x")


def test_pipeline_errors_are_one_line(tmp_path, capsys):
    assert main(["pipeline", "--goal", "nope", "--out", str(tmp_path), "--dry-run"]) == 2
    assert main(["pipeline", "--goal", "temp", "--train-config", str(tmp_path / "missing.toml"), "--dry-run"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "'nope'" in errors[0] and "missing.toml" in errors[1]
