"""Explain an infeasible selection problem in words and numbers.

First cheap counting arguments (a floor above its group's size, floors above the budget, a share
that the candidates surviving caps and dedup cannot reach); then, if none fires, a deletion filter
over constraint families with LP relaxations finds a minimal set that cannot all hold. Every LP
gets what is left of ``time_limit``; an LP that does not finish proves nothing (no false reason),
and a deletion filter cut short says so.
"""

from __future__ import annotations

import math
import time

import numpy as np


def explain_infeasible(problem, time_limit: float | None = None) -> str:
    deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
    reasons = _counting_reasons(problem, deadline)
    if reasons:
        return "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else "")
    return _deletion_filter(problem, deadline)


def _left(deadline) -> float | None:
    return None if deadline is None else max(0.05, deadline - time.perf_counter())


def _max_selectable(problem, uppers: list, mask: np.ndarray, limit: float, deadline=None) -> float:
    """LP upper bound on how many candidates of ``mask`` can be chosen under the families' upper bounds."""
    from gdo_opt.solvers.highs import solve_lp

    cols = np.flatnonzero(mask)
    if cols.size == 0:
        return 0.0
    # type(problem): the problem's own class builds the sub-problems (no import back into problem.py)
    sub = type(problem)(np.ones(cols.size), (0, int(min(limit, cols.size))))
    sub.families.extend(fam.upper_part(cols) for fam in uppers)
    form = sub.standard_form()
    lp = solve_lp(form.c, form.A, form.row_lo, form.row_hi, time_limit=_left(deadline))
    return math.floor(lp.objective + 1e-6) if lp.status == "optimal" else math.inf  # unknown: no claim


def _counting_reasons(problem, deadline=None) -> list[str]:
    """Each family's own counting arguments (a floor above its group, floors above the budget, a
    share the candidates surviving the other families' upper bounds cannot reach)."""
    reasons: list[str] = []
    if problem.budget_lo > problem.n:
        reasons.append(f"budget needs ≥ {problem.budget_lo} but the pool has only {problem.n} candidates")
    uppers = [f for f in problem.families if f.upper_part(np.zeros(0, dtype=np.int64)) is not None]

    def max_selectable(mask, limit):
        return _max_selectable(problem, uppers, mask, limit, deadline)

    for fam in problem.families:
        reasons.extend(fam.counting_reasons(problem, uppers, max_selectable))
    return reasons


def _feasible_lp(problem, families, deadline=None) -> bool | None:
    """True / False, or None when the LP did not finish in time."""
    from gdo_opt.solvers.highs import solve_lp

    sub = type(problem)(problem.scores, (problem.budget_lo, problem.budget_hi))
    sub.families = list(families)
    form = sub.standard_form()
    lp = solve_lp(np.zeros(problem.n), form.A, form.row_lo, form.row_hi, time_limit=_left(deadline))
    if lp.status in ("optimal", "infeasible"):
        return lp.status == "optimal"
    return None


def _deletion_filter(problem, deadline=None) -> str:
    families = list(problem.families)
    whole = _feasible_lp(problem, families, deadline)
    if whole is None:
        return "no explanation: the relaxation did not finish within the time limit"
    if whole:
        names = ", ".join(["budget", *(f.name for f in families)])
        return (
            f"no 0/1 selection satisfies all of {names} together, although fractional ones do "
            "(integrality makes it infeasible: loosen a floor or a share bound by a few units)"
        )
    core = list(families)
    cut_short = False
    for fam in list(core):
        trial = [f for f in core if f is not fam]
        feasible = _feasible_lp(problem, trial, deadline)
        if feasible is None:
            cut_short = True
            break
        if not feasible:
            core = trial
    names = ", ".join(["budget", *(f.name for f in core)])
    if cut_short:
        return (f"constraints {names} cannot all hold (budget [{problem.budget_lo}, {problem.budget_hi}]); "
                "the search for a smaller set was cut short at the time limit")
    return (
        f"constraints {names} cannot all hold (budget [{problem.budget_lo}, {problem.budget_hi}]); "
        "removing any one of them makes the relaxation feasible"
    )
