"""Audit any subset against a goal: Σρ, every constraint achieved vs bounds, the certified optimum
for the same K, and the gap.

This is how exact and greedy builders are compared on equal terms: the subset (ours, the published
builder's ``gdo_1x_*.jsonl``, or a plain list of ``qa_uid``) is mapped onto the pool by ``qa_uid``
and evaluated on the very problem ``select`` solves (:func:`build_goal_problem`). Constraints are
derived at the subset's own size K, so quotas scale with it; a size that differs from the goal's
budget rule is reported as a ``budget`` violation on top.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from gdo_opt.errors import GdoError
from gdo_opt.goal.metrics import Metrics
from gdo_opt.goal.preset import Preset
from gdo_opt.subset.pipeline import SelectConfig, build_goal_problem

UID_KEYS = ("qa_uid", "id")  # row keys tried in order (the published export writes qa_uid)


def _r(x) -> float | None:
    x = float(x)
    return float(f"{x:.10g}") if math.isfinite(x) else None


def _uids_from_jsonl(path: Path) -> np.ndarray:
    """qa_uid of each JSONL row, read vectorized (pyarrow) with only the key columns parsed."""
    import pyarrow as pa
    import pyarrow.json as pj

    for key in UID_KEYS:
        try:
            table = pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 24),
                                 parse_options=pj.ParseOptions(
                                     explicit_schema=pa.schema([(key, pa.string())]),
                                     unexpected_field_behavior="ignore"))
        except Exception as error:  # pyarrow names the row; one line is enough
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise GdoError(f"{path}: cannot read the subset: {message}") from None
        column = table.column(key)
        if column.null_count < len(column):
            if column.null_count:
                raise GdoError(f"{path}: {column.null_count} of {len(column)} rows have no {key!r}")
            return np.asarray(column.to_pylist(), dtype=object)
    raise GdoError(f"{path}: rows carry none of the keys {', '.join(UID_KEYS)}")


def read_subset(path: str | Path) -> tuple[np.ndarray, str]:
    """The qa_uids listed in a subset file and the format name.

    Formats: JSONL of objects with ``qa_uid`` (ours, the published builder's), Parquet with a
    ``qa_uid`` column, a JSON list of qa_uid strings, or plain text with one qa_uid per line.
    """
    path = Path(path)
    if not path.is_file():
        raise GdoError(f"{path}: subset file not found")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        key = next((k for k in UID_KEYS if k in names), None)
        if key is None:
            raise GdoError(f"{path}: no column {' or '.join(UID_KEYS)}")
        column = pq.read_table(path, columns=[key]).column(key)
        if column.null_count:
            raise GdoError(f"{path}: {column.null_count} rows have no {key!r}")
        return np.asarray(column.cast("string").to_pylist(), dtype=object), "parquet"
    with open(path, encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    if not head:
        return np.zeros(0, dtype=object), "empty"
    if head.startswith("["):
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise GdoError(f"{path}: not valid JSON: {error}") from None
        if not all(isinstance(x, str) for x in items):
            raise GdoError(f"{path}: a JSON subset must be a list of qa_uid strings")
        return np.asarray(items, dtype=object), "json-list"
    if head.startswith("{"):
        return _uids_from_jsonl(path), "jsonl"
    lines = pd.read_csv(path, header=None, names=["qa_uid"], dtype=str, skip_blank_lines=True,
                        sep="\x1f", engine="c", quoting=3)["qa_uid"].str.strip()
    return lines.to_numpy(dtype=object), "uid-list"


def match_rows(uids: np.ndarray, pool_uids, path: str = "subset") -> tuple[np.ndarray, int]:
    """Pool rows of ``uids`` (sorted, unique) and the number of repeated entries.

    Raises GdoError naming how many rows match no candidate (and the first few)."""
    index = pd.Index(np.asarray(pool_uids, dtype=object))
    if not index.is_unique:
        raise GdoError("candidates: qa_uid repeats in the pool; cannot map a subset onto it")
    rows = index.get_indexer(pd.Index(uids))
    missing = rows < 0
    if missing.any():
        first = ", ".join(repr(u) for u in uids[missing][:3])
        raise GdoError(f"{path}: {int(missing.sum())} of {uids.size} rows match no pool candidate by qa_uid "
                       f"(first: {first}); is it built from this pool?")
    unique = np.unique(rows)
    return unique.astype(np.int64), int(rows.size - unique.size)


def _violation_dict(v) -> dict:
    return {"name": v.name, "group": None if v.group is None else str(v.group), "value": _r(v.value),
            "lo": _r(v.lo), "hi": _r(v.hi), "shortfall": _r(max(v.lo - v.value, 0.0)),
            "excess": _r(max(v.value - v.hi, 0.0))}


def audit_subset(frame: pd.DataFrame, metrics: Metrics, preset: Preset, config: SelectConfig,
                 rows: np.ndarray, *, duplicates: int = 0, solve: bool = True) -> dict:
    """Evaluate pool rows ``rows`` against the goal; solve the same-K problem unless ``solve=False``.

    ``gap`` = (bound − objective) / max(1, |bound|) with ``bound`` the solver's certified upper bound
    on Σρ for this K: the subset is provably within ``gap`` of the best possible. ``gap_to_optimum``
    uses the best subset found instead (equal to ``gap`` when the solve is optimal).
    """
    from gdo_opt.selection.problem import Violation, relative_gap
    from gdo_opt.subset.report import clean_constraint_rows

    rows = np.unique(np.asarray(rows, dtype=np.int64))
    k = int(rows.size)
    if k == 0:
        raise GdoError("subset: no rows to audit")
    t0 = time.perf_counter()
    if preset.is_paper and config.oversample_caps is None:  # any row may be audited: all rows compete
        config = replace(config, oversample_caps=False)
    goal = build_goal_problem(frame, metrics, preset, config)
    goal_k = goal.k
    same_k = goal if goal_k == k else build_goal_problem(frame, metrics, preset, replace(config, target_count=k))
    problem, eligible = same_k.problem, same_k.eligible
    pos = np.searchsorted(eligible, rows)
    inside = (pos < eligible.size) & (eligible[np.minimum(pos, eligible.size - 1)] == rows)
    local = pos[inside]
    violations = []
    if goal_k != k:
        violations.append(Violation("budget", "goal rule", k, goal_k, goal_k))
    if not inside.all():  # rows the goal excludes (score.missing = "exclude" and no descriptors)
        violations.append(Violation("eligible", None, int((~inside).sum()), 0, 0))
    # the same-K budget can only fail through excluded rows, already counted as "eligible"
    columns = same_k.embed(local)  # paper goals: soft quotas filled by their slack (charged, not violated)
    violations += [v for v in problem.check(columns) if v.name != "budget"]
    sigma_rho = float(goal.rho[rows].sum())
    objective = problem.objective(columns) if same_k.elastic is not None else sigma_rho
    report = {
        "preset": preset.name,
        "k": k,
        "goal_k": int(goal_k),
        "duplicates": int(duplicates),
        "objective": _r(objective),
        "sigma_rho": _r(sigma_rho),
        "feasible": not violations,
        "violations": [_violation_dict(v) for v in violations],
        "constraints": clean_constraint_rows(problem.constraint_table(columns)),
        "budget": goal.budget_info,
        "optimum": None, "bound": None, "gap": None, "gap_to_optimum": None,
        "solve": None,
    }
    report["seconds"] = {"derive": round(time.perf_counter() - t0, 3)}
    if not solve:
        return report
    t1 = time.perf_counter()
    try:
        selection = problem.solve(solver=config.solver, time_limit=config.time_limit, mip_gap=config.mip_gap,
                                  seed=config.seed)
    except ValueError as error:
        raise GdoError(f"preset {preset.name}: solver {config.solver}: {error}") from None
    report["seconds"]["solve"] = round(time.perf_counter() - t1, 3)
    report["solve"] = {"solver": selection.solver, "status": selection.status, "k": k,
                       "message": " ".join(str(selection.message).split())}
    if selection.status in ("optimal", "feasible"):
        report["optimum"] = _r(selection.objective)
        if same_k.elastic is not None:
            found = np.asarray(selection.indices, dtype=np.int64)
            report["optimum_sigma_rho"] = _r(goal.rho[eligible[found[found < eligible.size]]].sum())
            report["quota_shortfall"] = {k_: int(sum(v.values())) for k_, v in
                                         same_k.elastic.shortfall(columns).items()}
            report["optimum_quota_shortfall"] = {k_: int(sum(v.values())) for k_, v in
                                                 same_k.elastic.shortfall(found).items()}
        report["bound"] = _r(selection.bound)
        report["gap"] = _r(relative_gap(objective, selection.bound))
        report["gap_to_optimum"] = _r(relative_gap(objective, selection.objective))
    return report


def audit_file(path: str | Path, frame: pd.DataFrame, metrics: Metrics, preset: Preset, config: SelectConfig,
               solve: bool = True, read: tuple[np.ndarray, str] | None = None) -> dict:
    """:func:`audit_subset` on a subset file (see :func:`read_subset` for the formats); ``read`` is
    the file's :func:`read_subset` result when the caller already has it."""
    uids, fmt = read if read is not None else read_subset(path)
    if uids.size == 0:
        raise GdoError(f"{path}: the subset file lists no rows")
    rows, duplicates = match_rows(uids, frame["qa_uid"].to_numpy(), str(path))
    report = audit_subset(frame, metrics, preset, config, rows, duplicates=duplicates, solve=solve)
    report = {"subset": str(path), "format": fmt, "rows": int(uids.size), **report}
    if duplicates:
        report["violations"].append({"name": "duplicates", "group": None, "value": duplicates, "lo": 0, "hi": 0,
                                     "shortfall": 0, "excess": duplicates})
        report["feasible"] = False
    return report


def print_audit(report: dict, console=None) -> None:
    """A short human summary: size, Σρ, optimum, gap, then every violation."""
    from rich.console import Console

    console = console or Console()

    def say(text: str) -> None:  # group labels look like rich markup ("[a|b]"): print them verbatim
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    def num(x, fmt=".6g"):
        return "-" if x is None else format(x, fmt)

    say(f"{report.get('subset', 'subset')} vs goal {report['preset']}: K = {report['k']} "
        f"(goal rule: {report['goal_k']})")
    line = f"  Σρ = {num(report['objective'])}"
    if report["solve"] is not None:
        line += (f"   optimum = {num(report['optimum'])}   bound = {num(report['bound'])}   "
                 f"gap = {num(report['gap'], '.3g')}   ({report['solve']['solver']}: {report['solve']['status']})")
    say(line)
    if not report["violations"]:
        say("  every constraint met")
        return
    say(f"  {len(report['violations'])} violation(s):")
    for v in report["violations"][:40]:
        where = v["name"] if v["group"] is None else f"{v['name']}[{v['group']}]"
        say(f"    {where} = {num(v['value'])} not in [{num(v['lo'])}, {num(v['hi'])}]")
    if len(report["violations"]) > 40:
        say(f"    ... {len(report['violations']) - 40} more (see --json)")
