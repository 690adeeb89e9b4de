"""One-epoch SFT with ms-swift (`swift sft`): TOML config -> exact command, checkpoint cadence, resume, log.

The controlled comparison trains the same model with the same recipe on the GDO 1x subset and on
Uni-10x; only ``dataset`` and ``output_dir`` differ between the two configs. We never reimplement
training: this module validates the config, computes what ms-swift cannot know from the config alone
(save_steps for "every 1/k of an epoch", the resume checkpoint), and runs ms-swift's own CLI.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gdo_opt.config import check_ranges, load_section, str_list, str_map
from gdo_opt.errors import GdoError

INSTALL_HINT = ("install it with `pip install 'gdo-opt[{extra}]'` (pin torch first), or create the CPU test "
                "environment with `scripts/setup-heavy.sh` (see docs/comparison.md)")

DEEPSPEED_STAGES = ("", "zero0", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload")
TRAIN_TYPES = ("full", "lora")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def resolve_path(base: Path, value: str) -> str:
    """Paths in a config are relative to the config file; hub ids (no such local path) stay as given."""
    if not value:
        return value
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return str(candidate)
    local = base / candidate
    # An "org/name" hub id that is not a local path is left alone; data files are always local.
    hub_like = re.fullmatch(r"[\w.-]+/[\w.-]+", value) and candidate.suffix not in DATA_SUFFIXES
    if local.exists() or value.startswith(".") or not hub_like:
        return str(local.resolve())
    return value


def tool_python(python: str) -> str:
    """The interpreter that has ms-swift / lmms-eval (the heavy env), defaulting to this one."""
    return python or sys.executable


def check_tool(python: str, module: str, tool: str, extra: str) -> None:
    """Fail with an install hint when ``module`` is not importable by ``python``."""
    if not Path(python).exists() and not shutil.which(python):
        raise GdoError(f"python '{python}' not found; {tool} needs an environment: {INSTALL_HINT.format(extra=extra)}")
    probe = [python, "-c", f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        raise GdoError(f"{tool} is not installed for {python}: {INSTALL_HINT.format(extra=extra)}")


def format_command(cmd: list[str], env: dict[str, str]) -> str:
    """Shell-quoted ``VAR=value ... cmd args`` line that reproduces the run exactly."""
    prefix = [f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    return " ".join(prefix + [shlex.quote(part) for part in cmd])


def run_logged(cmd: list[str], env: dict[str, str], log_path: Path, cwd: str | None = None,
               echo: bool = True) -> int:
    """Run ``cmd`` with ``env`` added, appending stdout+stderr to ``log_path`` (and echoing to stderr)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = os.environ | env
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {format_command(cmd, env)}\n")
        log.flush()
        try:
            proc = subprocess.Popen(cmd, env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", bufsize=1)
        except OSError as error:
            raise GdoError(f"cannot start {cmd[0]}: {error}") from None
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if echo:
                sys.stderr.write(line)
        return proc.wait()


def log_tail(log_path: Path, lines: int = 5) -> str:
    """Last meaningful lines of a log, joined on one line for a GdoError message."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    keep = [line.strip() for line in text if line.strip()][-lines:]
    return " | ".join(keep)[-600:]


# ---------------------------------------------------------------------------------------------
# Training config


TRAIN_SPEC: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "model_type": (str,),
    "template": (str,),
    "dataset": (str, list),
    "output_dir": (str,),
    "train_type": (str,),
    "deepspeed": (str,),
    "nproc_per_node": (int,),
    "nnodes": (int,),
    "per_device_train_batch_size": (int,),
    "gradient_accumulation_steps": (int,),
    "learning_rate": (float,),
    "num_train_epochs": (int,),
    "saves_per_epoch": (int,),
    "save_steps": (int,),
    "max_pixels": (int,),
    "video_max_pixels": (int,),
    "image_max_pixels": (int,),
    "fps_max_frames": (int,),
    "save_rounding": (str,),
    "warmup_ratio": (float,),
    "weight_decay": (float,),
    "max_grad_norm": (float,),
    "split_dataset_ratio": (float,),
    "torch_dtype": (str,),
    "max_length": (int,),
    "seed": (int,),
    "lora_rank": (int,),
    "lora_alpha": (int,),
    "freeze_vit": (bool,),
    "resume": (bool,),
    "dataset_size": (int,),
    "python": (str,),
    "extra_args": (list,),
    "env": (dict,),
}


@dataclass
class TrainConfig:
    """A validated ``[train]`` table (paths already resolved against the config file)."""

    model: str
    dataset: list[str]
    output_dir: str
    model_type: str = ""
    template: str = ""
    train_type: str = "full"
    deepspeed: str = ""
    nproc_per_node: int = 1
    nnodes: int = 1
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    num_train_epochs: int = 1
    saves_per_epoch: int = 0
    save_steps: int = 0
    max_pixels: int = 0
    video_max_pixels: int = 0
    image_max_pixels: int = 0
    fps_max_frames: int = 0
    save_rounding: str = "ceil"  # saves_per_epoch: "ceil" (at most k saves) | "floor" (published: steps // k)
    warmup_ratio: float = -1.0  # < 0: ms-swift's default; likewise weight_decay / max_grad_norm
    weight_decay: float = -1.0
    max_grad_norm: float = -1.0
    split_dataset_ratio: float = 0.0  # > 0: held-out rows for ms-swift's eval loss, every save_steps
    torch_dtype: str = "bfloat16"
    max_length: int = 0
    seed: int = 42
    lora_rank: int = 8
    lora_alpha: int = 32
    freeze_vit: bool = True
    resume: bool = False
    dataset_size: int = 0
    python: str = ""
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def samples_per_step(self) -> int:
        """Samples one optimizer step consumes: per-device batch x grad accumulation x world size."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * self.world_size


def load_train_config(path: str | Path) -> TrainConfig:
    """Parse and validate a train.toml (unknown keys, types, ranges and choices are one-line errors)."""
    path = Path(path)
    values = load_section(path, "train", TRAIN_SPEC, required=("model", "dataset", "output_dir"))
    base = path.resolve().parent
    values["dataset"] = [resolve_path(base, d) for d in str_list(path, "train", "dataset", values["dataset"])]
    values["model"] = resolve_path(base, values["model"])
    values["output_dir"] = str((base / Path(values["output_dir"]).expanduser()).resolve())
    if values.get("python"):
        values["python"] = resolve_path(base, values["python"]) if "/" in values["python"] else values["python"]
    values["extra_args"] = str_list(path, "train", "extra_args", values.get("extra_args", []))
    values["env"] = str_map(path, "train", values.get("env", {}))
    cfg = TrainConfig(**values, source=str(path))
    if cfg.train_type not in TRAIN_TYPES:
        raise GdoError(f"{path}: [train] key 'train_type' must be one of {', '.join(TRAIN_TYPES)}, got {cfg.train_type!r}")
    if cfg.deepspeed not in DEEPSPEED_STAGES and not cfg.deepspeed.endswith(".json"):
        stages = ", ".join(s for s in DEEPSPEED_STAGES if s)
        raise GdoError(f"{path}: [train] key 'deepspeed' must be empty, one of {stages}, or a .json file")
    check_ranges(path, "train", cfg,
                 at_least_1=("nproc_per_node", "nnodes", "per_device_train_batch_size", "gradient_accumulation_steps",
                             "num_train_epochs"),
                 at_least_0=("saves_per_epoch", "save_steps", "max_pixels", "video_max_pixels", "fps_max_frames",
                             "max_length", "dataset_size"))
    if not cfg.learning_rate > 0:
        raise GdoError(f"{path}: [train] key 'learning_rate' must be > 0")
    if cfg.save_rounding not in ("ceil", "floor"):
        raise GdoError(f"{path}: [train] key 'save_rounding' must be 'ceil' or 'floor', got {cfg.save_rounding!r}")
    if not 0 <= cfg.split_dataset_ratio < 1:
        raise GdoError(f"{path}: [train] key 'split_dataset_ratio' must be in [0, 1)")
    if cfg.saves_per_epoch and cfg.save_steps:
        raise GdoError(f"{path}: [train] set either 'saves_per_epoch' (every 1/k epoch) or 'save_steps', not both")
    return cfg


def count_samples(datasets: list[str]) -> int:
    """Training rows in local JSONL datasets (one non-empty line per sample)."""
    total = 0
    for name in datasets:
        local = Path(name)
        if not local.is_file():
            raise GdoError(f"{name}: no such local JSONL file (for a hub dataset, set 'dataset_size' "
                           "to use 'saves_per_epoch')")
        with open(local, "rb") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


def steps_per_epoch(n_samples: int, per_device_batch: int, grad_accum: int, world_size: int) -> int:
    """Optimizer steps in one epoch as the HF Trainer counts them (last partial batch/accumulation kept)."""
    batches_per_rank = math.ceil(math.ceil(n_samples / world_size) / per_device_batch)
    return max(1, math.ceil(batches_per_rank / grad_accum))


def save_steps_for(cfg: TrainConfig, n_samples: int) -> int:
    """save_steps giving a checkpoint every 1/k epoch: ceil (at most k saves per epoch + the final one) or,
    with ``save_rounding = "floor"``, steps // k as the published train_sft.sh computes it."""
    if cfg.save_steps:
        return cfg.save_steps
    if n_samples < 1:
        raise GdoError(f"{cfg.source}: [train] 'saves_per_epoch' needs the dataset size; set 'dataset_size'")
    steps = steps_per_epoch(n_samples, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps,
                            cfg.world_size)
    k = cfg.saves_per_epoch or 1
    return max(1, steps // k if cfg.save_rounding == "floor" else math.ceil(steps / k))


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """``checkpoint-<step>`` folders of a run, in step order."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def swift_executable(python: str) -> str:
    """The ``swift`` console script of the environment that owns ``python``."""
    beside = Path(python).parent / "swift"
    if beside.exists():
        return str(beside)
    return shutil.which("swift") or "swift"


@dataclass
class TrainPlan:
    """Everything needed to run (or print) one training run."""

    command: list[str]
    env: dict[str, str]
    output_dir: Path
    n_samples: int
    save_steps: int
    samples_per_step: int
    resume_from: str

    def shell(self) -> str:
        return format_command(self.command, self.env)


def plan_training(cfg: TrainConfig, n_samples: int | None = None) -> TrainPlan:
    """Build the exact ``swift sft`` command line and its environment (NPROC_PER_NODE, MAX_PIXELS, ...)."""
    if n_samples is None:
        local = all(Path(d).is_file() for d in cfg.dataset)
        n_samples = cfg.dataset_size or (count_samples(cfg.dataset) if local or cfg.saves_per_epoch else 0)
    save_steps = save_steps_for(cfg, n_samples) if (cfg.saves_per_epoch or cfg.save_steps) else 0
    out = Path(cfg.output_dir)
    resume_from = ""
    if cfg.resume:
        checkpoints = list_checkpoints(out)
        resume_from = str(checkpoints[-1]) if checkpoints else ""
    python = tool_python(cfg.python)
    cmd = [swift_executable(python), "sft",
           "--model", cfg.model,
           "--dataset", *cfg.dataset,
           "--output_dir", str(out),
           "--add_version", "false",
           "--tuner_type", cfg.train_type,
           "--torch_dtype", cfg.torch_dtype,
           "--num_train_epochs", str(cfg.num_train_epochs),
           "--per_device_train_batch_size", str(cfg.per_device_train_batch_size),
           "--gradient_accumulation_steps", str(cfg.gradient_accumulation_steps),
           "--learning_rate", repr(cfg.learning_rate),
           *(["--save_strategy", "steps", "--save_steps", str(save_steps)] if save_steps
             else ["--save_strategy", "epoch"]),
           "--save_only_model", "false",
           "--seed", str(cfg.seed),
           "--split_dataset_ratio", repr(cfg.split_dataset_ratio) if cfg.split_dataset_ratio else "0"]
    if cfg.split_dataset_ratio and save_steps:
        cmd += ["--eval_strategy", "steps", "--eval_steps", str(save_steps)]
    for key in ("warmup_ratio", "weight_decay", "max_grad_norm"):
        if getattr(cfg, key) >= 0:
            cmd += [f"--{key}", repr(getattr(cfg, key))]
    if cfg.model_type:
        cmd += ["--model_type", cfg.model_type]
    if cfg.template:
        cmd += ["--template", cfg.template]
    if cfg.train_type == "lora":
        cmd += ["--lora_rank", str(cfg.lora_rank), "--lora_alpha", str(cfg.lora_alpha), "--target_modules", "all-linear"]
    cmd += ["--freeze_vit", str(cfg.freeze_vit).lower()]
    if cfg.deepspeed:
        cmd += ["--deepspeed", cfg.deepspeed]
    if cfg.max_length:
        cmd += ["--max_length", str(cfg.max_length)]
    if resume_from:
        cmd += ["--resume_from_checkpoint", resume_from]
    cmd += cfg.extra_args
    env = {}
    if cfg.world_size > 1 or cfg.nproc_per_node > 1:
        env["NPROC_PER_NODE"] = str(cfg.nproc_per_node)  # ms-swift then launches itself with torchrun
    if cfg.nnodes > 1:
        env["NNODES"] = str(cfg.nnodes)
    if cfg.max_pixels:
        env["MAX_PIXELS"] = str(cfg.max_pixels)
    if cfg.video_max_pixels:
        env["VIDEO_MAX_PIXELS"] = str(cfg.video_max_pixels)
    if cfg.image_max_pixels:
        env["IMAGE_MAX_PIXELS"] = str(cfg.image_max_pixels)
    if cfg.fps_max_frames:
        env["FPS_MAX_FRAMES"] = str(cfg.fps_max_frames)
    env |= cfg.env
    return TrainPlan(cmd, env, out, n_samples, save_steps, cfg.samples_per_step, resume_from)


def train(cfg: TrainConfig, echo: bool = True) -> TrainPlan:
    """Run ``swift sft`` for ``cfg``; logs to OUTPUT_DIR/train.log; returns the plan that ran."""
    from gdo_opt.atomic import write_json

    python = tool_python(cfg.python)
    check_tool(python, "swift.cli", "ms-swift", "train")
    plan = plan_training(cfg)
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    # What eval needs to turn a checkpoint's global_step into samples seen, and how the run was made.
    write_json(plan.output_dir / "gdo_train.json", {
        "command": plan.command,
        "env": plan.env,
        "dataset": cfg.dataset,
        "dataset_size": plan.n_samples,
        "num_train_epochs": cfg.num_train_epochs,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "world_size": cfg.world_size,
        "samples_per_step": plan.samples_per_step,
        "save_steps": plan.save_steps,
    })
    log = plan.output_dir / "train.log"
    code = run_logged(plan.command, plan.env, log, echo=echo)
    if code != 0:
        raise GdoError(f"swift sft failed (exit {code}); see {log}: {log_tail(log, 3)}")
    if not list_checkpoints(plan.output_dir):
        raise GdoError(f"swift sft finished but wrote no checkpoint-* in {plan.output_dir}; see {log}")
    return plan

