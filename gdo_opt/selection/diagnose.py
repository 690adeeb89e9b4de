"""Explain an infeasible selection problem in words and numbers.

First cheap counting arguments (a floor above its group's size, floors above the budget, a share
that the candidates surviving caps and dedup cannot reach); then, if none fires, a deletion filter
over constraint families with LP relaxations finds a minimal set that cannot all hold.
"""

from __future__ import annotations

import math

import numpy as np

from gdo_opt.selection.families import GroupFamily, ShareFamily, fmt_number
from gdo_opt.selection.problem import SelectionProblem


def explain_infeasible(problem: SelectionProblem) -> str:
    reasons = _counting_reasons(problem)
    if reasons:
        return "; ".join(reasons[:3]) + (f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else "")
    return _deletion_filter(problem)


def _upper_families(problem) -> list[GroupFamily]:
    return [f for f in problem.families if isinstance(f, GroupFamily) and np.isfinite(f.hi).any()]


def _max_selectable(problem, mask: np.ndarray, families: list[GroupFamily], limit: float) -> float:
    """LP upper bound on how many candidates of ``mask`` can be chosen under upper-bound families."""
    from gdo_opt.solvers.highs import solve_lp

    cols = np.flatnonzero(mask)
    if cols.size == 0:
        return 0.0
    sub = SelectionProblem(np.ones(cols.size), (0, int(min(limit, cols.size))))
    for fam in families:
        codes = fam.codes[cols]
        sub.families.append(
            GroupFamily(
                fam.name, fam.kind, codes, fam.labels, np.zeros_like(fam.lo), fam.hi,
                np.bincount(codes[codes >= 0], minlength=fam.labels.size),
            )
        )
    form = sub.standard_form()
    lp = solve_lp(form.c, form.A, form.row_lo, form.row_hi)
    return math.floor(lp.objective + 1e-6) if lp.status == "optimal" else 0.0


def _counting_reasons(problem: SelectionProblem) -> list[str]:
    reasons: list[str] = []
    lo_k, hi_k = problem.budget_lo, problem.budget_hi
    if lo_k > problem.n:
        reasons.append(f"budget needs ≥ {lo_k} but the pool has only {problem.n} candidates")
    uppers = _upper_families(problem)
    for fam in problem.families:
        if isinstance(fam, GroupFamily):
            short = np.flatnonzero(fam.lo > fam.sizes)
            if short.size:
                g = int(short[0])
                more = f" (and {short.size - 1} more groups)" if short.size > 1 else ""
                reasons.append(
                    f"{fam.name}[{fam.labels[g]!r}] needs ≥ {fmt_number(fam.lo[g])} but only "
                    f"{int(fam.sizes[g])} candidates have that label{more}"
                )
            floor_total = float(fam.lo.sum())
            if floor_total > hi_k:
                reasons.append(
                    f"{fam.name} floors need ≥ {fmt_number(floor_total)} in total but the budget allows at most {hi_k}"
                )
            outside = int((fam.codes < 0).sum())
            most = float(np.minimum(fam.hi, fam.sizes).sum()) + outside
            if most < lo_k:
                reasons.append(
                    f"budget needs ≥ {lo_k} but {fam.name} lets at most {fmt_number(most)} be selected"
                )
        elif isinstance(fam, ShareFamily) and fam.b_mask.all():
            others = [f for f in uppers]
            names = " and ".join(f.name for f in others) or "the budget"
            if fam.lo is not None and fam.lo > 0:
                need = math.ceil(fam.lo * lo_k - 1e-9)
                got = _max_selectable(problem, fam.a_mask, others, hi_k)
                if got < need:
                    reasons.append(
                        f"share {fam.name} needs ≥ {need} of {lo_k} but only {fmt_number(got)} candidates "
                        f"in its mask survive {names}"
                    )
            if fam.hi is not None and fam.hi < 1:
                need = math.ceil((1 - fam.hi) * lo_k - 1e-9)
                got = _max_selectable(problem, ~fam.a_mask, others, hi_k)
                if got < need:
                    reasons.append(
                        f"share {fam.name} allows ≤ {fmt_number(fam.hi * lo_k)} of {lo_k} from its mask, so "
                        f"≥ {need} must come from outside it, but only {fmt_number(got)} survive {names}"
                    )
    return reasons


def _feasible_lp(problem: SelectionProblem, families) -> bool:
    from gdo_opt.solvers.highs import solve_lp

    sub = SelectionProblem(problem.scores, (problem.budget_lo, problem.budget_hi))
    sub.families = list(families)
    form = sub.standard_form()
    lp = solve_lp(np.zeros(problem.n), form.A, form.row_lo, form.row_hi)
    return lp.status == "optimal"


def _deletion_filter(problem: SelectionProblem) -> str:
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
