"""The one place a backend's answer is post-processed, whatever the backend.

``solve(problem, solver, **options)`` parses the options (unknown keys raise), starts one
stopwatch, calls the backend and turns its ``RawResult`` into a ``Selection``:

1. the indices are validated and the subset re-checked from the problem's own families: a subset
   that breaks a row is never returned (status error; at a time limit: no subset);
2. the objective is recomputed; a bound below it is withheld (it cannot be valid) and said so;
3. gap = (bound − objective) / max(1, |bound|); status "optimal" only within the requested
   ``mip_gap`` (or an absolute gap ≤ 1e-6), otherwise "feasible" (or "time_limit" when the
   backend stopped at the limit) with that gap;
4. an infeasible problem gets its explanation (``diagnose.explain_infeasible``), within what is
   left of the time limit (at least ``EXPLAIN_MIN_S``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from gdo_opt.selection.result import Selection
from gdo_opt.solvers.base import ABS_GAP_TOL, RawResult, Status, get_backend, relative_gap

EXPLAIN_MIN_S = 5.0  # the infeasibility explanation gets what is left of the time limit, at least this


def solve(problem, solver="auto", **options) -> Selection:
    backend = get_backend(solver)
    name = str(getattr(backend, "name", type(backend).__name__))
    opts = backend.options(**options)
    problem.freeze()
    if not backend.available():
        raw = RawResult(Status.ERROR, message=f"solver {name!r} is not available (its package is not installed)")
        return finish(problem, name, raw, opts, 0.0)
    start = time.perf_counter()
    if hasattr(opts, "start_clock"):
        opts.start_clock()
    if hasattr(opts, "report"):
        opts.report("start", solver=name, candidates=problem.n, budget=f"[{problem.budget_lo}, {problem.budget_hi}]",
                    time_limit=getattr(opts, "time_limit", None))
    try:
        raw = backend.solve(problem, opts)
    except ImportError as error:
        raw = RawResult(Status.ERROR, message=f"{name}: {error}")
    seconds = time.perf_counter() - start
    if not isinstance(raw, RawResult):
        raw = RawResult(Status.ERROR, message=f"{name}.solve returned {type(raw).__name__}, expected RawResult")
    selection = finish(problem, name, raw, opts, seconds)
    if hasattr(opts, "report"):
        opts.report("done", solver=name, status=selection.status.value, objective=selection.objective,
                    bound=selection.bound, gap=selection.gap, seconds=seconds)
    return selection


def finish(problem, name: str, raw: RawResult, options, seconds: float) -> Selection:
    """RawResult → checked Selection (the rules in the module docstring)."""
    notes = [raw.message] if raw.message else []
    info = dict(raw.info)
    try:
        status = Status(raw.status)
    except ValueError:
        status, notes = Status.ERROR, [f"{name} returned an unknown status {raw.status!r}", *notes]
    idx = None
    if raw.indices is not None:
        try:
            idx = problem.valid_indices(np.unique(np.asarray(raw.indices)))
        except ValueError as error:
            status, notes = Status.ERROR, [f"{name} returned invalid indices: {error}", *notes]
    if status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT) and idx is not None:
        violations = problem.check(idx)
        if violations:
            shown = "; ".join(str(v) for v in violations[:5])
            more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
            what = f"{len(violations)} constraint(s): {shown}{more}"
            if status == Status.TIME_LIMIT:
                notes.append(f"(the solver's last point violates {what})")
            else:
                status = Status.ERROR
                notes.insert(0, f"{name} returned a selection violating {what}.")
            idx = None
    if status.has_selection and idx is None:
        status, notes = Status.ERROR, [f"{name} reported {status.value} without a selection", *notes]
    bound = _finite(raw.bound)
    objective = math.nan
    if idx is not None and status != Status.ERROR:
        objective = problem.objective(idx)
        if math.isfinite(bound) and bound < objective - ABS_GAP_TOL - 1e-9 * abs(objective):
            notes.append(f"bound {bound:.10g} is below the subset's value {objective:.10g}: withheld")
            info["withheld_bound"] = bound
            bound = math.nan
        gap = relative_gap(objective, bound)
        if gap <= getattr(options, "mip_gap", 1e-4) or (math.isfinite(bound) and bound - objective <= ABS_GAP_TOL):
            status = Status.OPTIMAL
        elif status == Status.OPTIMAL:
            status = Status.FEASIBLE  # the backend's own tolerance was looser than mip_gap
        if status == Status.TIME_LIMIT:
            notes.insert(0, f"stopped at the time limit{_limit(options)} with a feasible subset, "
                            f"certified gap {gap:.3g}")
    else:
        idx = np.zeros(0, dtype=np.int64)
        gap = math.inf
        if status == Status.TIME_LIMIT:
            notes.insert(0, f"stopped at the time limit{_limit(options)} before a feasible subset was found")
        elif status == Status.INFEASIBLE:
            from gdo_opt.selection.diagnose import explain_infeasible

            left = options.remaining() if hasattr(options, "remaining") else None
            notes.insert(0, explain_infeasible(problem, None if left is None else max(left, EXPLAIN_MIN_S)))
    return Selection(
        indices=np.asarray(idx, dtype=np.int64),
        objective=objective,
        bound=bound,
        gap=gap,
        status=status,
        solver=name,
        seconds=seconds,
        message="; ".join(n.strip() for n in notes if n and n.strip()),
        info=info,
    )


def _limit(options) -> str:
    limit = getattr(options, "time_limit", None)
    return f" ({limit:g} s)" if isinstance(limit, (int, float)) else ""


def _finite(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan
