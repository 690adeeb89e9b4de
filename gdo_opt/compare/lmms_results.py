"""lmms-eval results JSON -> tidy accuracy rows (task, subtask, metric, accuracy).

Separate from the sweep (``gdo_opt.compare.evaluate``) because it is pure parsing: lmms-eval's
result layout (groups, group_subtasks, n-samples, "metric,filter" keys) is the only thing it knows.
"""

from __future__ import annotations

from pathlib import Path

from gdo_opt.errors import GdoError

# Preferred metric names when a task reports several (first match wins; override with [eval] metrics).
METRIC_PREFERENCE = ("accuracy", "acc", "exact_match", "score")



def _pick_metric(entry: dict, task: str, metrics: dict[str, str]) -> tuple[str, float] | None:
    """(metric, value) of one results entry; keys look like "accuracy,none" / "acc_stderr,none"."""
    values = {}
    for key, value in entry.items():
        if key == "alias" or "_stderr" in key or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        values.setdefault(key.split(",", 1)[0], float(value))
    if not values:
        return None
    wanted = metrics.get(task)
    if wanted:
        if wanted not in values:
            raise GdoError(f"task {task}: metric '{wanted}' not in results (has {', '.join(sorted(values))})")
        return wanted, values[wanted]
    for preferred in METRIC_PREFERENCE:
        for name in sorted(values):
            if name == preferred:
                return name, values[name]
    for preferred in METRIC_PREFERENCE:
        for name in sorted(values):
            if preferred in name:
                return name, values[name]
    name = sorted(values)[0]
    return name, values[name]


def _leaves(name: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    if name not in group_subtasks:
        return [name]
    return [leaf for sub in group_subtasks[name] for leaf in _leaves(sub, group_subtasks)]


def tidy_rows(results: dict, tasks: list[str], metrics: dict[str, str] | None = None) -> list[dict]:
    """Flatten one lmms-eval results JSON into (task, subtask, metric, accuracy) rows.

    A group (e.g. mvbench) gives one row per leaf subtask plus a ``subtask == ""`` row: the group's own
    aggregate when lmms-eval reports one, else the mean of its subtasks weighted by their sample counts.
    """
    metrics = metrics or {}
    per_task = results.get("results", {})
    groups = results.get("groups", {})
    group_subtasks = results.get("group_subtasks", {})
    n_samples = results.get("n-samples", {})
    rows = []
    for task in tasks:
        if task in group_subtasks:
            subrows = []
            for leaf in _leaves(task, group_subtasks):
                picked = _pick_metric(per_task.get(leaf, {}), task, metrics)
                if picked is None:
                    continue
                weight = (n_samples.get(leaf) or {}).get("effective") or 1
                subrows.append({"task": task, "subtask": leaf, "metric": picked[0], "accuracy": picked[1],
                                "_w": weight})
            own = _pick_metric(groups.get(task) or per_task.get(task, {}), task, metrics)
            if own is None and subrows:
                total = sum(r["_w"] for r in subrows)
                own = (subrows[0]["metric"], sum(r["accuracy"] * r["_w"] for r in subrows) / total)
            if own is None:
                raise GdoError(f"lmms-eval results have no metric for task group {task}")
            rows.append({"task": task, "subtask": "", "metric": own[0], "accuracy": own[1]})
            rows += [{k: v for k, v in r.items() if k != "_w"} for r in subrows]
        else:
            picked = _pick_metric(per_task.get(task, {}), task, metrics)
            if picked is None:
                raise GdoError(f"lmms-eval results have no metric for task {task}")
            rows.append({"task": task, "subtask": "", "metric": picked[0], "accuracy": picked[1]})
    return rows


def latest_results_json(output_path: Path) -> Path | None:
    """lmms-eval writes OUTPUT/<model_name_sanitized>/<date>_results.json; newest name wins."""
    found = sorted(output_path.glob("**/*_results.json"), key=lambda p: p.name)
    return found[-1] if found else None
