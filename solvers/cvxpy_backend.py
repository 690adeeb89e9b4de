"""The plain problem through cvxpy: ``SelectionProblem.to_cvxpy()`` + any MILP-capable solver.

Users who need a constraint gdo-opt does not model take ``x, objective, constraints =
problem.to_cvxpy()``, append their own rows and call ``cvxpy.Problem(...).solve(solver=...)``. This
backend solves the unmodified problem that way (HiGHS by default; ``cvxpy_solver=`` picks another).
cvxpy reports no dual bound for MILPs, so the bound is the LP relaxation solved by HiGHS.
"""

from __future__ import annotations

import math

import numpy as np


def solve(problem, options):
    import cvxpy as cp
    from gdo_opt.solvers.highs import solve_lp

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
        from gdo_opt.diagnose import explain_infeasible

        return problem.empty_selection("cvxpy", "infeasible", explain_infeasible(problem))
    if x.value is None:
        return problem.empty_selection("cvxpy", "error", f"cvxpy/{solver_name} ended with status {status}")
    form = problem.standard_form()
    lp = solve_lp(form.c, form.A, form.row_lo, form.row_hi)
    bound = lp.objective if lp.status == "optimal" else math.nan
    sel = problem.empty_selection(
        "cvxpy",
        "optimal" if status == cp.OPTIMAL else "feasible",
        f"cvxpy/{solver_name}: {status}; bound from the LP relaxation",
        bound,
    )
    sel.indices = np.flatnonzero(np.asarray(x.value) > 0.5)
    return sel
