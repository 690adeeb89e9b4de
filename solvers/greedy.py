"""Greedy selection for pools too large to solve exactly, with a certified gap when possible.

1. Score order (stable, ties by index) with every upper bound checked and floors protected by
   reservation, in vectorized blocks (``solvers/greedy_fill.py``).
2. Repair: every still-violated row (a floor that caps/dedup starved, a share inside a sub-pool,
   a generic row) is fixed by swaps — best candidates that raise it in, worst selected ones whose
   removal breaks nothing out — in batches that are kept only when no row gets worse
   (``solvers/greedy_repair.py``).
3. If rows stay violated, HiGHS decides: it finds a feasible set or proves infeasibility. The
   answer is never an infeasible set marked feasible.
The bound is the LP relaxation (core + pricing for big pools, ``solvers/pricing.py``); extra
``bound=False`` skips it. With the bound comes a second, LP-guided pass (the same greedy in
reduced-cost order, extra ``guided=False`` turns it off); the better pass is returned.
This module is the backend (``solve``) and the two passes ``auto`` reuses (``run_greedy``,
``guided_pass``).
"""

from __future__ import annotations

import time

import numpy as np

from gdo_opt.selection.problem import relative_gap

from .greedy_repair import Greedy

# --------------------------------------------------------------------------- backend


def run_greedy(problem, form=None, order=None) -> tuple[np.ndarray, list[str], dict]:
    """Phase 1 + repair; returns (indices, names of rows still violated, timings)."""
    form = form or problem.standard_form()
    start = time.perf_counter()
    g = Greedy(problem, order=order)
    g.fill()
    fill_s = time.perf_counter() - start
    left = g.repair(form)
    info = dict(fill_seconds=fill_s, repair_seconds=time.perf_counter() - start - fill_s,
                skipped_rows=g.skipped_rows)
    return np.flatnonzero(g.x), left, info


def guided_pass(problem, form, result) -> tuple[np.ndarray, list[str]]:
    """The greedy again, in LP order: reduced cost d = c − Aᵀy first (items the LP takes whole
    have d ≥ 0, items it leaves have d ≤ 0), then the LP value, then the score. The LP is almost
    integral, so this pass lands next to the optimum at the cost of one more greedy run."""
    x_lp = np.zeros(problem.n)
    x_lp[result.core] = result.x_core
    order = np.lexsort((-problem.scores, -np.round(x_lp, 9), -np.round(result.reduced, 9)))
    idx, left, _ = run_greedy(problem, form, order=order)
    return idx, left


def solve(problem, options):
    """Greedy + repair; a certified LP bound (``bound=False`` skips it); HiGHS if repair fails."""
    from gdo_opt.solvers import pricing

    extra = options.extra
    deadline = None if options.time_limit is None else time.perf_counter() + float(options.time_limit)
    start = time.perf_counter()
    form = problem.standard_form()
    indices, left, info = run_greedy(problem, form)
    seconds = time.perf_counter() - start
    notes = [f"greedy {indices.size} items in {seconds:.2f}s"]
    if left:
        shown = ", ".join(left[:5]) + (f" (+{len(left) - 5} more)" if len(left) > 5 else "")
        notes.append(f"repair left {len(left)} row(s) violated ({shown}); asking HiGHS")
        sel = _highs_fallback(problem, options, deadline)
        sel.solver = "greedy"
        sel.message = "; ".join([*notes, sel.message])
        sel.info.update(info, fallback="highs")
        return sel
    sel = problem.empty_selection("greedy", "feasible", "")
    sel.indices = indices
    sel.objective = problem.objective(indices)
    sel.info.update(info)
    if extra.get("bound", True):
        result = pricing.lp_bound(problem, extra=indices, deadline=deadline, threads=options.threads)
        sel.info["bound_iterations"] = result.iterations
        if result.status == "optimal":
            sel.bound = result.bound
            notes.append(f"LP bound {sel.bound:.6g} (core {result.core.size}, {len(result.iterations)} "
                         f"pricing round(s))")
            if extra.get("guided", True):
                t = time.perf_counter()
                g_idx, g_left = guided_pass(problem, form, result)
                value = problem.objective(g_idx)
                notes.append(f"LP-guided pass {value:.6g} in {time.perf_counter() - t:.2f}s")
                sel.info["guided_objective"] = value
                if not g_left and value > sel.objective:
                    sel.indices, sel.objective = g_idx, value
            sel.gap = relative_gap(sel.objective, sel.bound)
            notes.append(f"certified gap {sel.gap:.3g}")
        else:
            notes.append(f"no LP bound ({result.status}: {result.message})")
    else:
        notes.append("bound skipped (bound=False)")
    sel.message = "; ".join(notes)
    return sel


def _highs_fallback(problem, options, deadline):
    from gdo_opt.solvers import highs

    opts = type(options)(
        time_limit=None if deadline is None else max(1.0, deadline - time.perf_counter()),
        mip_gap=max(options.mip_gap, 1e-2), seed=options.seed, threads=options.threads,
        verbose=options.verbose, extra={},
    )
    return highs.solve(problem, opts)
