"""One goal end to end, as the published ``scripts/run_profile_pipeline.sh`` does it: build the goal's
subsets, train GDO-1x and Uni-10x with the same recipe, evaluate both, compare.

Layout under ``--out ROOT`` (the published OUTPUT_ROOT / RUN_ROOT layout)::

    ROOT/<goal>/gdo_1x.jsonl, uni_10x.jsonl, report.json      gdo-opt select
    ROOT/runs/<goal>/gdo/checkpoint-*                          train on GDO-1x
    ROOT/runs/<goal>/uni_10x/checkpoint-*                      train on Uni-10x
    ROOT/runs/<goal>/eval/gdo, eval/uni_10x                    lmms-eval tables
    ROOT/runs/<goal>/compare                                   final deltas, peak match, reduction

Only ``dataset`` / ``output_dir`` (train) and ``target`` / ``output_dir`` / ``run_name`` (eval)
change between the two arms; everything else comes from the recipe configs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from gdo_opt.compare.evaluate import EvalConfig, eval_command
from gdo_opt.compare.train import TrainConfig, format_command, plan_training, steps_per_epoch

ARMS = ("gdo", "uni_10x")


@dataclass
class GoalRun:
    """The two arms of one goal: their datasets, train configs and eval configs."""

    goal: str
    root: Path
    subset_dir: Path
    data: dict[str, Path]
    train: dict[str, TrainConfig]
    evals: dict[str, EvalConfig]
    compare_dir: Path
    arms_trained: tuple[str, ...]
    arms_evaluated: tuple[str, ...]


def plan_goal_run(goal: str, root: str | Path, train_cfg: TrainConfig, eval_cfg: EvalConfig, *,
                  baseline_multiplier: float = 10, model: str = "", run_uni_train: bool = True,
                  run_uni_eval: bool = True) -> GoalRun:
    """Per-arm configs derived from the recipe (paths exactly as ``select`` writes them)."""
    root = Path(root).resolve()
    subset_dir = root / goal
    data = {"gdo": subset_dir / "gdo_1x.jsonl", "uni_10x": subset_dir / f"uni_{baseline_multiplier:g}x.jsonl"}
    run_root = root / "runs" / goal
    train, evals = {}, {}
    for arm in ARMS:
        run_dir = run_root / arm
        train[arm] = replace(train_cfg, dataset=[str(data[arm])], output_dir=str(run_dir),
                             model=model or train_cfg.model, resume=False)
        evals[arm] = replace(eval_cfg, target=str(run_dir), output_dir=str(run_root / "eval" / arm),
                             run_name=f"{goal}-{'gdo-1x' if arm == 'gdo' else f'uni-{baseline_multiplier:g}x'}")
    trained = ("gdo", "uni_10x") if run_uni_train else ("gdo",)
    evaluated = ("gdo", "uni_10x") if run_uni_eval else ("gdo",)
    return GoalRun(goal, root, subset_dir, data, train, evals, run_root / "compare", trained, evaluated)


def checkpoint_steps(n_samples: int, cfg: TrainConfig, save_steps: int) -> list[int]:
    """Steps at which the HF trainer under ms-swift saves: every save_steps, and the last step."""
    total = steps_per_epoch(n_samples, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps,
                            cfg.world_size) * cfg.num_train_epochs
    steps = list(range(save_steps, total + 1, save_steps)) if save_steps else []
    return steps if steps and steps[-1] == total else steps + [total]


def dry_run_lines(run: GoalRun, select_command: list[str], sizes: dict[str, int], size_note: str) -> list[str]:
    """Every command the run would execute, in order, as shell lines (comments say where numbers come from)."""
    lines = [f"# goal {run.goal}: build the subsets ({size_note})", shlex.join(select_command)]
    for arm in run.arms_trained:
        plan = plan_training(run.train[arm], n_samples=sizes[arm])
        lines += [f"# train {arm} on {sizes[arm]} rows: save_steps = {plan.save_steps}, "
                  f"{plan.samples_per_step} samples per step", plan.shell()]
    for arm in run.arms_evaluated:
        cfg = run.evals[arm]
        plan = plan_training(run.train[arm], n_samples=sizes[arm])
        steps = checkpoint_steps(sizes[arm], run.train[arm], plan.save_steps)
        lines.append(f"# evaluate {arm}: {len(steps)} checkpoints of {cfg.target} -> {cfg.output_dir}")
        for step in steps:
            ckpt = Path(cfg.target) / f"checkpoint-{step}"
            out = Path(cfg.output_dir) / "checkpoints" / ckpt.name / "lmms_eval"
            lines.append(format_command(eval_command(cfg, ckpt, out), cfg.env))
    if set(run.arms_evaluated) == set(ARMS):
        lines += ["# compare GDO-1x with Uni-10x: final deltas, peak match, reduction",
                  shlex.join(["gdo-opt", "compare", run.evals["gdo"].output_dir, run.evals["uni_10x"].output_dir,
                              "--out", str(run.compare_dir)])]
    return lines


def run_goal(run: GoalRun, build, echo: bool = True, console=None) -> dict:
    """Build (``build()`` writes ROOT/<goal>/), train, evaluate and compare; returns the comparison."""
    from gdo_opt.compare.convergence import compare_runs
    from gdo_opt.compare.evaluate import evaluate
    from gdo_opt.compare.train import train

    def say(text: str) -> None:
        if console is not None:
            console.print(text, markup=False, highlight=False)

    say(f"[1/4] {run.goal}: building the subsets into {run.subset_dir}")
    build()
    for arm in run.arms_trained:
        say(f"[2/4] training {arm} on {run.data[arm].name} -> {run.train[arm].output_dir}")
        train(run.train[arm], echo=echo)
    for arm in run.arms_evaluated:
        say(f"[3/4] evaluating {arm} -> {run.evals[arm].output_dir}")
        evaluate(run.evals[arm], echo=echo)
    if set(run.arms_evaluated) != set(ARMS):
        say("[4/4] compare skipped: Uni-10x was not evaluated")
        return {}
    say(f"[4/4] comparing -> {run.compare_dir}")
    return compare_runs(run.evals["gdo"].output_dir, run.evals["uni_10x"].output_dir, run.compare_dir)
