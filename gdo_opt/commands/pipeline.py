"""`gdo-opt pipeline --goal G`: build a goal, train GDO-1x and Uni-10x, evaluate both, compare.

What the published ``scripts/run_profile_pipeline.sh`` does, with the published recipe
(experiments/configs/recipe/) by default; ``--dry-run`` prints every command instead.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

HELP = "one goal end to end: build, train GDO-1x and Uni-10x, evaluate both, compare"
RECIPE = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "recipe"
TRAIN_RECIPE = RECIPE / "train_qwen3_vl_8b_instruct.toml"
EVAL_RECIPE = RECIPE / "eval_longvideo.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gdo_opt.commands._common import add_pool_arguments

    parser.add_argument("--goal", default="temp_plus",
                        help="goal preset (minloss, diverse, temp, temp_plus) or a .toml path")
    add_pool_arguments(parser)
    parser.add_argument("--out", default="outputs", metavar="ROOT",
                        help="output root: ROOT/<goal>/ subsets, ROOT/runs/<goal>/ runs, evals, comparison")
    parser.add_argument("--train-config", default=None, metavar="TOML",
                        help=f"training recipe (default: the published one, {TRAIN_RECIPE.name})")
    parser.add_argument("--eval-config", default=None, metavar="TOML",
                        help=f"evaluation recipe (default: the published one, {EVAL_RECIPE.name})")
    parser.add_argument("--model", default="", help="model to fine-tune (overrides the recipe's `model`)")
    parser.add_argument("--no-uni-train", action="store_true", help="do not train Uni-10x (RUN_UNI_TRAIN=0)")
    parser.add_argument("--no-uni-eval", action="store_true", help="do not evaluate Uni-10x (RUN_UNI_EVAL=0)")
    parser.add_argument("--dry-run", action="store_true", help="print every command and exit")
    parser.add_argument("--quiet", action="store_true", help="only log to files, do not echo tool output")


def _recipe(path: str | None, default: Path, flag: str) -> Path:
    from gdo_opt.errors import GdoError

    if path:
        return Path(path)
    if not default.is_file():
        raise GdoError(f"{flag}: the published recipe {default} is not in this installation; pass {flag} TOML")
    return default


def select_argv(args: argparse.Namespace, goal: str, out: Path) -> list[str]:
    """The `gdo-opt select` command equivalent to the pool options given here (non-defaults only)."""
    from gdo_opt.commands._common import add_pool_arguments

    probe = argparse.ArgumentParser(add_help=False)
    add_pool_arguments(probe)
    argv = ["gdo-opt", "select"]
    for action in probe._actions:
        value = getattr(args, action.dest, action.default)
        if value == action.default or value is None:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv + ["--preset", goal, "--out", str(out)]


def _sizes(run, args, preset, config) -> tuple[dict[str, int], str]:
    """Rows of each arm's dataset: the built files when present, else K from the goal's budget rule."""
    from gdo_opt.compare.train import count_samples

    if all(run.data[a].is_file() for a in run.data):
        return {a: count_samples([str(run.data[a])]) for a in run.data}, "sizes from the existing subsets"
    from gdo_opt.commands._common import load_inputs
    from gdo_opt.subset.pipeline import build_goal_problem

    frame, metrics = load_inputs(args)
    k = build_goal_problem(frame, metrics, preset, config).k
    sizes = {"gdo": k, "uni_10x": math.ceil(config.baseline_multiplier * k)}
    return sizes, f"not built yet: K = {k} from the budget rule, Uni = ceil({config.baseline_multiplier:g} x K)"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gdo_opt.commands._common import load_inputs, select_config
    from gdo_opt.compare.evaluate import load_eval_config
    from gdo_opt.compare.goal_run import dry_run_lines, plan_goal_run, run_goal
    from gdo_opt.compare.train import load_train_config
    from gdo_opt.errors import GdoError
    from gdo_opt.goal.preset import load_preset

    preset = load_preset(args.goal)
    config = select_config(args)
    if not config.baseline_multiplier > 0:
        raise GdoError("--baseline-multiplier: the pipeline trains the Uni baseline; it must be > 0")
    train_cfg = load_train_config(_recipe(args.train_config, TRAIN_RECIPE, "--train-config"))
    eval_cfg = load_eval_config(_recipe(args.eval_config, EVAL_RECIPE, "--eval-config"))
    goal_run = plan_goal_run(preset.name, args.out, train_cfg, eval_cfg, baseline_multiplier=config.baseline_multiplier,
                             model=args.model, run_uni_train=not args.no_uni_train, run_uni_eval=not args.no_uni_eval)
    if args.dry_run:
        sizes, note = _sizes(goal_run, args, preset, config)
        print("\n".join(dry_run_lines(goal_run, select_argv(args, args.goal, goal_run.subset_dir), sizes, note)))
        return 0

    def build() -> None:
        from gdo_opt.subset.pipeline import select_subset, write_outputs

        frame, metrics = load_inputs(args)
        result = select_subset(frame, metrics, preset, config)
        write_outputs(result, frame, metrics, goal_run.subset_dir)

    console = Console(stderr=True)
    run_goal(goal_run, build, echo=not args.quiet, console=console)
    console.print(f"done: {goal_run.compare_dir}", markup=False, highlight=False)
    return 0
