"""Explain an infeasible selection problem in words and numbers.

First cheap counting arguments (a floor above its group's size, floors above the budget, a share
that the candidates surviving caps and dedup cannot reach); then, if none fires, a deletion filter
over constraint families with LP relaxations finds a minimal set that cannot all hold.
"""

from __future__ import annotations

import math

import numpy as np


def explain_infeasible(problem) -> str:
    reasons = _counting_reasons(problem)
    if reasons:
        return "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else "")
    return _deletion_filter(problem)


def _max_selectable(problem, uppers: list, mask: np.ndarray, limit: float) -> float:
    """LP upper bound on how many candidates of ``mask`` can be chosen under the families' upper bounds."""
    from gdo_opt.solvers.highs import solve_lp

    cols = np.flatnonzero(mask)
    if cols.size == 0:
        return 0.0
    # type(problem): the problem's own class builds the sub-problems (no import back into problem.py)
    sub = type(problem)(np.ones(cols.size), (0, int(min(limit, cols.size))))
    sub.families.extend(fam.upper_part(cols) for fam in uppers)
    form = sub.standard_form()
    lp = solve_lp(form.c, form.A, form.row_lo, form.row_hi)
    return math.floor(lp.objective + 1e-6) if lp.status == "optimal" else 0.0


def _counting_reasons(problem) -> list[str]:
    """Each family's own counting arguments (a floor above its group, floors above the budget, a
    share the candidates surviving the other families' upper bounds cannot reach)."""
    reasons: list[str] = []
    if problem.budget_lo > problem.n:
        reasons.append(f"budget needs ≥ {problem.budget_lo} but the pool has only {problem.n} candidates")
    uppers = [f for f in problem.families if f.upper_part(np.zeros(0, dtype=np.int64)) is not None]

    def max_selectable(mask, limit):
        return _max_selectable(problem, uppers, mask, limit)

    for fam in problem.families:
        reasons.extend(fam.counting_reasons(problem, uppers, max_selectable))
    return reasons


def _feasible_lp(problem, families) -> bool:
    from gdo_opt.solvers.highs import solve_lp

    sub = type(problem)(problem.scores, (problem.budget_lo, problem.budget_hi))
    sub.families = list(families)
    form = sub.standard_form()
    lp = solve_lp(np.zeros(problem.n), form.A, form.row_lo, form.row_hi)
    return lp.status == "optimal"


def _deletion_filter(problem) -> str:
    families = list(problem.families)
    if _feasible_lp(problem, families):
        names = ", ".join(["budget", *(f.name for f in families)])
        return (
            f"no 0/1 selection satisfies all of {names} together, although fractional ones do "
            "(integrality makes it infeasible: loosen a floor or a share bound by a few units)"
        )
    core = list(families)
    for fam in list(core):
        trial = [f for f in core if f is not fam]
        if not _feasible_lp(problem, trial):
            core = trial
    names = ", ".join(["budget", *(f.name for f in core)])
    return (
        f"constraints {names} cannot all hold (budget [{problem.budget_lo}, {problem.budget_hi}]); "
        "removing any one of them makes the relaxation feasible"
    )
