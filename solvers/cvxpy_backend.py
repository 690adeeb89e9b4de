"""The plain problem through cvxpy: ``SelectionProblem.to_cvxpy()`` + any MILP-capable solver.

Users who need a constraint gdo-opt does not model take ``x, objective, constraints =
problem.to_cvxpy()``, append their own rows and call ``cvxpy.Problem(...).solve(solver=...)``. This
backend solves the unmodified problem that way (HiGHS by default; ``cvxpy_solver=`` picks another).
The bound is HiGHS's MIP dual bound when cvxpy ran HiGHS (read from ``solver_stats.extra_stats``),
otherwise the LP relaxation solved by HiGHS.
"""

from __future__ import annotations

import math

import numpy as np


def solve(problem, options):
    import cvxpy as cp
    from gdo_opt.solvers.highs import new_highs, solve_lp

    new_highs()  # keeps HiGHS's once-per-process banner off stdout

    x, objective, constraints = problem.to_cvxpy()
    cvx_problem = cp.Problem(objective, constraints)
    solver_name = options.extra.get("cvxpy_solver", "HIGHS")
    kwargs = {}
    if solver_name == "HIGHS":
        kwargs["mip_rel_gap"] = float(options.mip_gap)
        kwargs["random_seed"] = int(options.seed)
        if options.time_limit is not None:
            kwargs["time_limit"] = float(options.time_limit)
    try:
        cvx_problem.solve(solver=solver_name, verbose=bool(options.verbose), **kwargs)
    except cp.error.SolverError as error:
        return problem.empty_selection("cvxpy", "error", f"cvxpy/{solver_name}: {error}")
    status = cvx_problem.status
    if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        from gdo_opt.selection.diagnose import explain_infeasible

        return problem.empty_selection("cvxpy", "infeasible", explain_infeasible(problem))
    if x.value is None:
        return problem.empty_selection("cvxpy", "error", f"cvxpy/{solver_name} ended with status {status}")
    bound, source = _mip_dual_bound(cvx_problem), "HiGHS MIP dual bound"
    if not math.isfinite(bound):
        form = problem.standard_form()
        lp = solve_lp(form.c, form.A, form.row_lo, form.row_hi)
        bound, source = (lp.objective if lp.status == "optimal" else math.nan), "LP relaxation"
    sel = problem.empty_selection(
        "cvxpy",
        "optimal" if status == cp.OPTIMAL else "feasible",
        f"cvxpy/{solver_name}: {status}; bound from the {source}",
        bound,
    )
    sel.indices = np.flatnonzero(np.asarray(x.value) > 0.5)
    return sel


def _mip_dual_bound(cvx_problem) -> float:
    """HiGHS's dual bound in the sense of our maximization (cvxpy may have minimized −cᵀx)."""
    info = getattr(cvx_problem.solver_stats, "extra_stats", None)
    bound = getattr(info, "mip_dual_bound", None)
    primal = getattr(info, "objective_function_value", None)
    if bound is None or primal is None or cvx_problem.value is None or not math.isfinite(bound):
        return math.nan
    flipped = abs(primal + cvx_problem.value) < abs(primal - cvx_problem.value)
    return -float(bound) if flipped else float(bound)
