"""train/eval wrappers without the heavy tools: config validation, command building, --dry-run, tables."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest

from gdo_opt.cli import main
from gdo_opt.compare.evaluate import (
    DEFAULT_TASKS,
    collect,
    dry_run_lines,
    find_targets,
    load_eval_config,
    plan_eval,
    run_job,
    samples_seen,
)
from gdo_opt.compare.lmms_results import tidy_rows
from gdo_opt.compare.train import (
    check_tool,
    list_checkpoints,
    load_train_config,
    plan_training,
    save_steps_for,
    steps_per_epoch,
)
from gdo_opt.errors import GdoError

TRAIN_TOML = """
[train]
model = "Qwen/Qwen3-VL-8B-Instruct"
dataset = "data/subset 1x.jsonl"
output_dir = "runs/gdo-1x"
train_type = "full"
deepspeed = "zero2"
nproc_per_node = 2
per_device_train_batch_size = 2
gradient_accumulation_steps = 4
learning_rate = 1e-5
saves_per_epoch = 3
max_pixels = 401408
fps_max_frames = 32
extra_args = ["--report_to", "none"]
env = { CUDA_VISIBLE_DEVICES = "0,1" }
"""


def _write_jsonl(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
           "images": ["x.png"], "qa_uid": "ov::0::t0"}
    path.write_text("".join(json.dumps(row | {"qa_uid": f"ov::{i}::t0"}) + "\n" for i in range(n)) + "\n")


@pytest.fixture
def train_toml(tmp_path):
    _write_jsonl(tmp_path / "data" / "subset 1x.jsonl", 100)
    path = tmp_path / "train.toml"
    path.write_text(TRAIN_TOML)
    return path


def test_steps_per_epoch_and_save_cadence(train_toml):
    # 100 samples / 2 ranks = 50 per rank -> 25 batches of 2 -> ceil(25 / 4) = 7 optimizer steps.
    assert steps_per_epoch(100, 2, 4, 2) == 7
    assert steps_per_epoch(16, 2, 2, 1) == 4
    assert steps_per_epoch(1, 8, 8, 8) == 1
    cfg = load_train_config(train_toml)
    assert cfg.samples_per_step == 16
    assert save_steps_for(cfg, 100) == 3  # every 1/3 epoch: ceil(7 / 3)


def test_dry_run_command(train_toml, capsys):
    assert main(["train", "--config", str(train_toml), "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    parts = shlex.split(line)
    assert parts[:4] == ["CUDA_VISIBLE_DEVICES=0,1", "FPS_MAX_FRAMES=32", "MAX_PIXELS=401408", "NPROC_PER_NODE=2"]
    assert Path(parts[4]).name == "swift" and parts[5] == "sft"
    args = parts[6:]

    def value(flag):
        return args[args.index(flag) + 1]

    assert value("--model") == "Qwen/Qwen3-VL-8B-Instruct"  # hub id left alone
    assert value("--dataset") == str(train_toml.parent / "data" / "subset 1x.jsonl")  # quoted path with a space
    assert value("--output_dir") == str(train_toml.parent / "runs" / "gdo-1x")
    assert value("--tuner_type") == "full"
    assert value("--deepspeed") == "zero2"
    assert value("--save_steps") == "3"
    assert value("--num_train_epochs") == "1"
    assert value("--per_device_train_batch_size") == "2"
    assert value("--gradient_accumulation_steps") == "4"
    assert value("--learning_rate") == "1e-05"
    assert args[-2:] == ["--report_to", "none"]
    assert "--resume_from_checkpoint" not in args


def test_lora_and_resume_latest_checkpoint(train_toml, capsys):
    text = train_toml.read_text().replace('train_type = "full"', 'train_type = "lora"')
    train_toml.write_text(text + "resume = true\n")
    out = train_toml.parent / "runs" / "gdo-1x"
    for step in (9, 10, 2):
        (out / f"checkpoint-{step}").mkdir(parents=True)
    (out / "checkpoint-x").mkdir()
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-2", "checkpoint-9", "checkpoint-10"]
    plan = plan_training(load_train_config(train_toml))
    assert plan.resume_from == str(out / "checkpoint-10")
    assert "--lora_rank" in plan.command and plan.command[plan.command.index("--tuner_type") + 1] == "lora"
    # --resume on the command line does the same as resume = true.
    train_toml.write_text(text)
    assert main(["train", "--config", str(train_toml), "--dry-run", "--resume"]) == 0
    assert "--resume_from_checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("saves_per_epoch = 3", "saves_per_epoch = 3\nbatch = 4"), "unknown key 'batch'"),
        (("learning_rate = 1e-5", 'learning_rate = "fast"'), "key 'learning_rate' must be number"),
        (("nproc_per_node = 2", "nproc_per_node = 2.5"), "key 'nproc_per_node' must be integer"),
        (('train_type = "full"', 'train_type = "qlora"'), "key 'train_type' must be one of"),
        (('deepspeed = "zero2"', 'deepspeed = "zero9"'), "key 'deepspeed'"),
        (("saves_per_epoch = 3", "saves_per_epoch = 3\nsave_steps = 10"), "not both"),
        (("per_device_train_batch_size = 2", "per_device_train_batch_size = 0"), "must be >= 1"),
        (('model = "Qwen/Qwen3-VL-8B-Instruct"', ""), "missing required key 'model'"),
        (("[train]", "[training]"), "unknown section"),
        (("[train]", "[train"), "invalid TOML"),
    ],
)
def test_train_config_errors_name_file_and_key(train_toml, edit, message):
    train_toml.write_text(train_toml.read_text().replace(*edit))
    with pytest.raises(GdoError, match=message) as info:
        load_train_config(train_toml)
    assert str(train_toml) in str(info.value)
    assert "\n" not in str(info.value)


def test_train_cli_error_is_one_line(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.toml"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such config file" in err


def test_saves_per_epoch_needs_local_data_or_size(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[train]\nmodel = "m"\ndataset = "org/hub-data"\noutput_dir = "o"\nsaves_per_epoch = 4\n')
    with pytest.raises(GdoError, match="dataset_size"):
        plan_training(load_train_config(path))
    path.write_text(path.read_text() + "dataset_size = 64\n")
    assert plan_training(load_train_config(path)).save_steps == 16  # 64 steps of 1 sample / 4


def test_check_tool_says_how_to_install():
    with pytest.raises(GdoError, match=r"pip install 'gdo-opt\[train\]'.*setup-heavy.sh"):
        check_tool(sys.executable, "surely_not_an_installed_module_gdo", "ms-swift", "train")
    check_tool(sys.executable, "json", "json", "x")  # present: no error


# ---------------------------------------------------------------------------------------------
# eval


def _checkpoint(run: Path, step: int, per_device=2, accum=2, world=1, args=True) -> Path:
    ckpt = run / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text("{}")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": 0.5}))
    if args:
        (ckpt / "args.json").write_text(json.dumps({"per_device_train_batch_size": per_device,
                                                    "gradient_accumulation_steps": accum,
                                                    "global_world_size": world}))
    return ckpt


def test_samples_seen_rules(tmp_path):
    run = tmp_path / "run"
    assert samples_seen(_checkpoint(run, 3, per_device=2, accum=4, world=8)) == 3 * 64
    bare = _checkpoint(run, 5, args=False)
    with pytest.raises(GdoError, match="samples_per_step"):
        samples_seen(bare)
    assert samples_seen(bare, samples_per_step=10) == 50
    (run / "gdo_train.json").write_text(json.dumps({"samples_per_step": 7, "dataset_size": 30,
                                                    "num_train_epochs": 1}))
    assert samples_seen(bare) == 30  # 35 capped at one epoch of 30 samples
    model = tmp_path / "base"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert samples_seen(model) == 0
    assert find_targets(model) == [model]
    assert [p.name for p in find_targets(run)] == ["checkpoint-3", "checkpoint-5"]
    with pytest.raises(GdoError, match="neither a model folder"):
        find_targets(tmp_path)


RESULTS = {
    "results": {
        "mvbench": {"alias": "mvbench"},
        "mvbench_action": {"alias": " - a", "accuracy,none": 0.5, "accuracy_stderr,none": 0.1},
        "mvbench_count": {"alias": " - c", "accuracy,none": 0.8, "accuracy_stderr,none": 0.1},
        "videomme": {"alias": "videomme", "videomme_perception_score,none": 41.5, "submission,none": None},
    },
    "groups": {"mvbench": {"alias": "mvbench"}},
    "group_subtasks": {"mvbench": ["mvbench_action", "mvbench_count"]},
    "n-samples": {"mvbench_action": {"original": 10, "effective": 10}, "mvbench_count": {"original": 30,
                                                                                       "effective": 30}},
}


def test_tidy_rows_groups_subtasks_and_metric_choice():
    rows = tidy_rows(RESULTS, ["mvbench", "videomme"])
    by = {(r["task"], r["subtask"]): r for r in rows}
    # The group has no aggregate of its own: subtasks weighted by sample count, (10*0.5 + 30*0.8) / 40.
    assert by[("mvbench", "")]["accuracy"] == pytest.approx(0.725)
    assert by[("mvbench", "mvbench_count")]["accuracy"] == 0.8
    assert by[("videomme", "")] == {"task": "videomme", "subtask": "", "metric": "videomme_perception_score",
                                    "accuracy": 41.5}
    with_agg = json.loads(json.dumps(RESULTS))
    with_agg["groups"]["mvbench"]["accuracy,none"] = 0.6
    assert tidy_rows(with_agg, ["mvbench"])[0]["accuracy"] == 0.6
    with pytest.raises(GdoError, match="metric 'acc'"):
        tidy_rows(RESULTS, ["videomme"], {"videomme": "acc"})
    with pytest.raises(GdoError, match="no metric for task lvbench"):
        tidy_rows(RESULTS, ["lvbench"])


@pytest.fixture
def eval_toml(tmp_path):
    run = tmp_path / "runs" / "gdo-1x"
    for step in (4, 8):
        _checkpoint(run, step)
    path = tmp_path / "eval.toml"
    path.write_text(
        '[eval]\nmodel = "qwen3_vl"\ntarget = "runs/gdo-1x"\noutput_dir = "runs/gdo-1x/eval"\n'
        'device = "cpu"\nmodel_args = { max_pixels = 401408 }\nenv = { HF_HUB_OFFLINE = 1 }\n'
    )
    return path


def test_eval_config_defaults_and_errors(eval_toml):
    cfg = load_eval_config(eval_toml)
    assert cfg.tasks == list(DEFAULT_TASKS) and cfg.name == "gdo-1x" and cfg.env == {"HF_HUB_OFFLINE": "1"}
    eval_toml.write_text(eval_toml.read_text() + 'tasks = "mvbench, lvbench"\n')
    assert load_eval_config(eval_toml).tasks == ["mvbench", "lvbench"]
    eval_toml.write_text(eval_toml.read_text().replace("max_pixels = 401408", 'pretrained = "x"'))
    with pytest.raises(GdoError, match="'pretrained' is set per checkpoint"):
        load_eval_config(eval_toml)
    eval_toml.write_text('[eval]\nmodel = "m"\ntarget = "t"\noutput_dir = "o"\nbatch_size = "1"\n')
    with pytest.raises(GdoError, match=r"eval.toml: \[eval\] key 'batch_size' must be integer"):
        load_eval_config(eval_toml)


def test_eval_dry_run_and_skip_finished(eval_toml, capsys):
    cfg = load_eval_config(eval_toml)
    assert main(["eval", "--config", str(eval_toml), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# checkpoint-4: samples_seen=16" in out and "# checkpoint-8: samples_seen=32" in out
    first = shlex.split(out.splitlines()[1])
    assert first[0] == "HF_HUB_OFFLINE=1" and first[2:4] == ["-m", "lmms_eval"]
    assert first[first.index("--model_args") + 1] == (
        f"pretrained={eval_toml.parent / 'runs/gdo-1x/checkpoint-4'},max_pixels=401408")
    assert first[first.index("--tasks") + 1] == "mvbench,videomme,mlvu_test,lvbench"
    # Mark checkpoint-4 finished: it is skipped, and its rows land in the table.
    done = Path(cfg.output_dir) / "checkpoints" / "checkpoint-4" / "tidy.json"
    done.parent.mkdir(parents=True)
    rows = [{"run": "gdo-1x", "checkpoint": "checkpoint-4", "samples_seen": 16, "task": t, "subtask": "",
             "metric": "acc", "accuracy": 0.5} for t in DEFAULT_TASKS]
    done.write_text(json.dumps({"tasks": list(DEFAULT_TASKS), "rows": rows}))
    assert [job.done for job in plan_eval(cfg)] == [True, False]
    assert dry_run_lines(cfg)[0].startswith("# checkpoint-4: done, skipped")
    table = collect(cfg)
    assert list(table.columns) == ["run", "checkpoint", "samples_seen", "task", "subtask", "metric", "accuracy"]
    assert len(table) == 4 and table["samples_seen"].dtype == "int64"


def test_eval_failure_without_results_is_an_error(eval_toml):
    cfg = load_eval_config(eval_toml)
    cfg.python = sys.executable  # no lmms_eval here: the command fails and writes no results JSON
    job = plan_eval(cfg)[0]
    with pytest.raises(GdoError, match="lmms-eval failed on .*checkpoint-4"):
        run_job(cfg, job, echo=False)
    assert (job.output_path.parent / "lmms_eval.log").is_file()
    assert not (job.output_path.parent / "tidy.json").exists()


def test_compare_cli(tmp_path, capsys):
    def table(run, points):
        return pd.DataFrame([{"run": run, "checkpoint": f"checkpoint-{s}", "samples_seen": s, "task": "mvbench",
                              "subtask": "", "metric": "accuracy", "accuracy": a} for s, a in points])

    table("gdo", [(10, 0.3), (20, 0.5)]).to_csv(tmp_path / "a.csv", index=False)
    table("uni", [(100, 0.4), (200, 0.45)]).to_parquet(tmp_path / "b.parquet", index=False)
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "b.parquet"), "--out", str(tmp_path / "c")]) == 0
    summary = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert summary["peak_match"][0]["peak_match"] == 20 and summary["peak_match"][0]["reduction"] == 10.0
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2


def test_example_configs_parse():
    configs = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    train = load_train_config(configs / "train.toml")
    assert train.saves_per_epoch == 20 and train.world_size == 8 and train.samples_per_step == 32
    assert plan_training(train, n_samples=64_000).save_steps == 100  # 2000 steps / 20
    cfg = load_eval_config(configs / "eval.toml")
    assert cfg.tasks == list(DEFAULT_TASKS) and cfg.num_processes == 8


def test_lora_checkpoints_are_merged_before_eval(tmp_path, capsys):
    run = tmp_path / "lora-run"
    ckpt = _checkpoint(run, 6)
    (ckpt / "config.json").unlink()
    (ckpt / "adapter_config.json").write_text("{}")
    path = tmp_path / "eval.toml"
    path.write_text('[eval]\nmodel = "qwen3_vl"\ntarget = "lora-run"\noutput_dir = "ev"\ntasks = "mvbench"\n'
                    'export_args = ["--use_hf", "true"]\n')
    assert main(["eval", "--config", str(path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    merged = tmp_path / "ev" / "checkpoints" / "checkpoint-6" / "merged"
    assert lines[0] == "# checkpoint-6: samples_seen=24"
    export = shlex.split(lines[1])
    assert export[1:] == ["export", "--adapters", str(ckpt), "--merge_lora", "true", "--output_dir", str(merged),
                          "--exist_ok", "true", "--use_hf", "true"]
    assert f"pretrained={merged}" in shlex.split(lines[2])
    path.write_text(path.read_text() + "merge_lora = false\n")
    with pytest.raises(GdoError, match="LoRA checkpoint"):
        plan_eval(load_eval_config(path))


def test_default_cadence_is_once_per_epoch_and_local_paths(tmp_path):
    path = tmp_path / "t.toml"
    # "data/x.jsonl" looks like org/name but is a data file: resolved locally, even before it exists.
    path.write_text('[train]\nmodel = "org/model"\ndataset = "data/x.jsonl"\noutput_dir = "o"\n')
    cfg = load_train_config(path)
    assert cfg.dataset == [str(tmp_path / "data" / "x.jsonl")] and cfg.model == "org/model"
    plan = plan_training(cfg)
    assert plan.save_steps == 0 and plan.n_samples == 0
    i = plan.command.index("--save_strategy")
    assert plan.command[i + 1] == "epoch" and "--save_steps" not in plan.command
    _write_jsonl(tmp_path / "data" / "x.jsonl", 5)
    assert plan_training(cfg).n_samples == 5  # counted when local, for the samples_seen cap
