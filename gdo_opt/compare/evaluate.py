"""Checkpoint sweeps with lmms-eval: every ``checkpoint-*`` of a run -> one tidy accuracy table.

The convergence analysis needs accuracy as a function of training samples, so each checkpoint is
evaluated with lmms-eval's own CLI and its results JSON is flattened into rows
(run, checkpoint, samples_seen, task, subtask, metric, accuracy). Finished checkpoints are skipped,
so an interrupted sweep resumes where it stopped.

samples_seen = global_step x per_device_train_batch_size x gradient_accumulation_steps x world size,
read from the checkpoint's trainer_state.json and args.json (ms-swift writes both), else from the
run's gdo_train.json, else from ``samples_per_step`` in eval.toml; it is capped at epochs x dataset
size when the run recorded its dataset size (the last step of an epoch may be partial).

LoRA checkpoints (adapter only) are merged first with ms-swift's own ``swift export --merge_lora``
into OUTPUT/checkpoints/<name>/merged, because lmms-eval model classes load full weights.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gdo_opt.compare.convergence import TIDY_COLUMNS
from gdo_opt.compare.lmms_results import latest_results_json, tidy_rows
from gdo_opt.compare.train import (
    check_tool,
    format_command,
    list_checkpoints,
    log_tail,
    resolve_path,
    run_logged,
    tool_python,
)
from gdo_opt.config import check_ranges, load_section, str_list, str_map
from gdo_opt.errors import GdoError

DEFAULT_TASKS = ("mvbench", "videomme", "mlvu_test", "lvbench")

EVAL_SPEC: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "model_args": (dict,),
    "target": (str,),
    "run_name": (str,),
    "tasks": (str, list),
    "include_path": (str,),
    "output_dir": (str,),
    "batch_size": (int,),
    "device": (str,),
    "num_processes": (int,),
    "limit": (int,),
    "log_samples": (bool,),
    "samples_per_step": (int,),
    "metrics": (dict,),
    "python": (str,),
    "extra_args": (list,),
    "merge_lora": (bool,),
    "keep_merged": (bool,),
    "export_args": (list,),
    "env": (dict,),
}


@dataclass
class EvalConfig:
    """A validated ``[eval]`` table (paths resolved against the config file)."""

    model: str
    target: str
    output_dir: str
    model_args: dict[str, str] = field(default_factory=dict)
    run_name: str = ""
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    include_path: str = ""
    batch_size: int = 1
    device: str = "cuda"
    num_processes: int = 1
    limit: int = 0
    log_samples: bool = True
    samples_per_step: int = 0
    metrics: dict[str, str] = field(default_factory=dict)
    python: str = ""
    extra_args: list[str] = field(default_factory=list)
    merge_lora: bool = True
    keep_merged: bool = False  # merged LoRA weights are a full model copy per checkpoint: drop after use
    export_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def name(self) -> str:
        return self.run_name or Path(self.target).name


def load_eval_config(path: str | Path) -> EvalConfig:
    """Parse and validate an eval.toml; errors name the file and key."""
    path = Path(path)
    values = load_section(path, "eval", EVAL_SPEC, required=("model", "target", "output_dir"))
    base = path.resolve().parent
    values["target"] = resolve_path(base, values["target"])
    values["output_dir"] = str((base / Path(values["output_dir"]).expanduser()).resolve())
    if values.get("include_path"):
        values["include_path"] = str((base / values["include_path"]).resolve())
    if values.get("python") and "/" in values["python"]:
        values["python"] = resolve_path(base, values["python"])
    tasks = values.get("tasks", list(DEFAULT_TASKS))
    tasks = [t.strip() for item in str_list(path, "eval", "tasks", tasks) for t in item.split(",") if t.strip()]
    if not tasks:
        raise GdoError(f"{path}: [eval] key 'tasks' is empty")
    values["tasks"] = tasks
    values["extra_args"] = str_list(path, "eval", "extra_args", values.get("extra_args", []))
    values["export_args"] = str_list(path, "eval", "export_args", values.get("export_args", []))
    values["env"] = str_map(path, "eval", values.get("env", {}))
    values["model_args"] = str_map(path, "eval.model_args", values.get("model_args", {}))
    if "pretrained" in values["model_args"]:
        raise GdoError(f"{path}: [eval.model_args] 'pretrained' is set per checkpoint from 'target'; remove it")
    metrics = values.get("metrics", {})
    if not all(isinstance(v, str) for v in metrics.values()):
        raise GdoError(f"{path}: [eval.metrics] values must be metric names (strings)")
    cfg = EvalConfig(**values, source=str(path))
    check_ranges(path, "eval", cfg, at_least_1=("batch_size", "num_processes"),
                 at_least_0=("limit", "samples_per_step"))
    return cfg


# ---------------------------------------------------------------------------------------------
# Targets and samples seen


def find_targets(target: str | Path) -> list[Path]:
    """The checkpoints of a run dir (step order), or the model folder itself when it has none."""
    target = Path(target)
    if not target.is_dir():
        raise GdoError(f"{target}: no such model or run directory")
    checkpoints = list_checkpoints(target)
    if checkpoints:
        return checkpoints
    if (target / "config.json").is_file() or (target / "adapter_config.json").is_file():
        return [target]
    raise GdoError(f"{target}: neither a model folder (config.json) nor a run with checkpoint-* folders")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def samples_seen(checkpoint: Path, samples_per_step: int = 0) -> int:
    """Training samples consumed when ``checkpoint`` was saved (module docstring has the rule)."""
    state = _read_json(checkpoint / "trainer_state.json")
    step = state.get("global_step")
    if step is None:
        name = checkpoint.name
        if not name.startswith("checkpoint-"):
            return 0  # a plain model folder (e.g. the base model): nothing trained yet
        step = int(name.split("-", 1)[1])
    run_meta = _read_json(checkpoint.parent / "gdo_train.json")
    args = _read_json(checkpoint / "args.json") or _read_json(checkpoint.parent / "args.json")
    per_step = 0
    if args.get("per_device_train_batch_size") and args.get("gradient_accumulation_steps"):
        world = args.get("global_world_size") or args.get("world_size") or 1
        per_step = int(args["per_device_train_batch_size"]) * int(args["gradient_accumulation_steps"]) * int(world)
    per_step = per_step or int(run_meta.get("samples_per_step") or 0) or samples_per_step
    if not per_step:
        raise GdoError(f"{checkpoint}: cannot tell samples per step (no args.json / gdo_train.json); "
                       "set 'samples_per_step' in eval.toml")
    seen = int(step) * per_step
    if run_meta.get("dataset_size"):
        seen = min(seen, int(run_meta["dataset_size"]) * int(run_meta.get("num_train_epochs") or 1))
    return seen


# ---------------------------------------------------------------------------------------------
# Running


def eval_command(cfg: EvalConfig, model_path: Path, output_path: Path) -> list[str]:
    """The exact ``python -m lmms_eval ...`` (or ``accelerate launch``) command for one checkpoint."""
    python = tool_python(cfg.python)
    model_args = ",".join([f"pretrained={model_path}"] + [f"{k}={v}" for k, v in cfg.model_args.items()])
    if cfg.num_processes > 1:
        cmd = [python, "-m", "accelerate.commands.launch", "--num_processes", str(cfg.num_processes), "-m", "lmms_eval"]
    else:
        cmd = [python, "-m", "lmms_eval"]
    cmd += ["--model", cfg.model, "--model_args", model_args, "--tasks", ",".join(cfg.tasks),
            "--batch_size", str(cfg.batch_size), "--device", cfg.device, "--output_path", str(output_path)]
    if cfg.include_path:
        cmd += ["--include_path", cfg.include_path]
    if cfg.limit:
        cmd += ["--limit", str(cfg.limit)]
    if cfg.log_samples:
        cmd += ["--log_samples"]
    return cmd + cfg.extra_args


def _checkpoint_label(path: Path, target: Path) -> str:
    return path.name if path != target else "model"


def _done_file(cfg: EvalConfig, label: str) -> Path:
    return Path(cfg.output_dir) / "checkpoints" / label / "tidy.json"


def is_done(cfg: EvalConfig, label: str) -> bool:
    """A checkpoint is finished when its tidy.json covers every requested task."""
    done = _read_json(_done_file(cfg, label))
    return bool(done) and set(cfg.tasks) <= set(done.get("tasks", []))


def is_adapter(path: Path) -> bool:
    """A LoRA checkpoint: adapter weights without a full model config."""
    return (path / "adapter_config.json").is_file() and not (path / "config.json").is_file()


def merge_command(cfg: EvalConfig, adapter: Path, merged: Path) -> list[str]:
    """``swift export --adapters CKPT --merge_lora true --output_dir MERGED`` (base model from args.json)."""
    from gdo_opt.compare.train import swift_executable

    return [swift_executable(tool_python(cfg.python)), "export", "--adapters", str(adapter), "--merge_lora", "true",
            "--output_dir", str(merged), "--exist_ok", "true", *cfg.export_args]


@dataclass
class EvalJob:
    label: str
    model_path: Path
    samples_seen: int
    command: list[str]
    output_path: Path
    done: bool
    merge: list[str] = field(default_factory=list)  # swift export command when model_path must be merged first


def plan_eval(cfg: EvalConfig) -> list[EvalJob]:
    """One job per checkpoint (or the single model), marking the ones already finished."""
    target = Path(cfg.target)
    jobs = []
    for path in find_targets(target):
        label = _checkpoint_label(path, target)
        out = Path(cfg.output_dir) / "checkpoints" / label / "lmms_eval"
        model_path, merge = path, []
        if is_adapter(path):
            if not cfg.merge_lora:
                raise GdoError(f"{path}: LoRA checkpoint; set merge_lora = true (or merge it with `swift export`)")
            model_path = out.parent / "merged"
            merge = merge_command(cfg, path, model_path)
        jobs.append(EvalJob(label, model_path, samples_seen(path, cfg.samples_per_step),
                            eval_command(cfg, model_path, out), out, is_done(cfg, label), merge))
    return jobs


def run_job(cfg: EvalConfig, job: EvalJob, echo: bool = True) -> list[dict]:
    """Evaluate one checkpoint, parse its results and write its tidy.json (the skip marker)."""
    from gdo_opt.atomic import write_json

    log = job.output_path.parent / "lmms_eval.log"
    if job.merge and not (job.model_path / "config.json").is_file():
        code = run_logged(job.merge, cfg.env, log, echo=echo)
        if code != 0 or not (job.model_path / "config.json").is_file():
            raise GdoError(f"swift export --merge_lora failed for {job.label} (exit {code}); see {log}: "
                           f"{log_tail(log, 2)}")
    stale = latest_results_json(job.output_path) if job.output_path.exists() else None
    code = run_logged(job.command, cfg.env, log, echo=echo)
    found = latest_results_json(job.output_path) if job.output_path.exists() else None
    # lmms-eval exits 0 even when evaluation failed, so a fresh results file is the success signal.
    if code != 0 or found is None or found == stale:
        raise GdoError(f"lmms-eval failed on {job.model_path} (exit {code}); see {log}: {log_tail(log, 2)}")
    results = _read_json(found)
    rows = [{"run": cfg.name, "checkpoint": job.label, "samples_seen": job.samples_seen} | row
            for row in tidy_rows(results, cfg.tasks, cfg.metrics)]
    write_json(_done_file(cfg, job.label), {"tasks": sorted(cfg.tasks), "results_json": found.name, "rows": rows})
    if job.merge and not cfg.keep_merged:
        shutil.rmtree(job.model_path, ignore_errors=True)
    return rows


def collect(cfg: EvalConfig) -> pd.DataFrame:
    """All finished checkpoints' rows as one table, sorted (deterministic bytes for equal results)."""
    rows = []
    for done in sorted((Path(cfg.output_dir) / "checkpoints").glob("*/tidy.json")):
        data = _read_json(done)
        rows += [r for r in data.get("rows", []) if r.get("task") in cfg.tasks]
    table = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    table["samples_seen"] = table["samples_seen"].astype("int64")
    table["accuracy"] = table["accuracy"].astype("float64")
    return table.sort_values(["samples_seen", "checkpoint", "task", "subtask"], kind="stable").reset_index(drop=True)


def write_table(table: pd.DataFrame, output_dir: str | Path) -> tuple[Path, Path]:
    """results.parquet + results.csv, both atomic."""
    from gdo_opt.atomic import atomic_open, write_parquet

    out = Path(output_dir)
    write_parquet(out / "results.parquet", table)
    with atomic_open(out / "results.csv") as handle:
        table.to_csv(handle, index=False, lineterminator="\n")
    return out / "results.parquet", out / "results.csv"


def evaluate(cfg: EvalConfig, echo: bool = True) -> pd.DataFrame:
    """Evaluate every unfinished checkpoint, then write the combined tidy table."""
    jobs = plan_eval(cfg)
    pending = [job for job in jobs if not job.done]
    if pending:
        check_tool(tool_python(cfg.python), "lmms_eval", "lmms-eval", "eval")
    if any(job.merge for job in pending):
        check_tool(tool_python(cfg.python), "swift.cli", "ms-swift (to merge LoRA checkpoints)", "train")
    for job in pending:
        run_job(cfg, job, echo=echo)
    table = collect(cfg)
    write_table(table, cfg.output_dir)
    return table


def dry_run_lines(cfg: EvalConfig) -> list[str]:
    """Shell lines that ``evaluate`` would run (finished checkpoints as comments)."""
    lines = []
    for job in plan_eval(cfg):
        if job.done:
            lines.append(f"# {job.label}: done, skipped\n# " + format_command(job.command, cfg.env))
            continue
        lines.append(f"# {job.label}: samples_seen={job.samples_seen}")
        if job.merge:
            lines.append(format_command(job.merge, cfg.env))
        lines.append(format_command(job.command, cfg.env))
    return lines
