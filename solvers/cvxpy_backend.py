"""The plain problem through cvxpy: ``SelectionProblem.to_cvxpy()`` + any MILP-capable solver.

Users who need a constraint gdo-opt does not model take ``x, objective, constraints =
problem.to_cvxpy()``, append their own rows and call ``cvxpy.Problem(...).solve(solver=...)``. This
backend solves the unmodified problem that way (HiGHS by default; ``cvxpy_solver=`` picks another).
The bound is HiGHS's MIP dual bound when cvxpy ran HiGHS (read from ``solver_stats.extra_stats``),
otherwise the LP relaxation solved by HiGHS within the time left. A time-out is reported as
``time_limit`` (cvxpy's USER_LIMIT, or a value it returns without a solution), never as a subset.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from gdo_opt.solvers.base import BaseBackend, RawResult, SolveOptions, Status


@dataclass
class CvxpyOptions(SolveOptions):
    cvxpy_solver: str = "HIGHS"


class CvxpyBackend(BaseBackend):
    name = "cvxpy"
    Options = CvxpyOptions
    requires = ("cvxpy",)

    def solve(self, problem, options: CvxpyOptions) -> RawResult:
        import cvxpy as cp
        from gdo_opt.solvers.highs import new_highs, solve_lp

        new_highs()  # keeps HiGHS's once-per-process banner off stdout

        x, objective, constraints = problem.to_cvxpy()
        cvx_problem = cp.Problem(objective, constraints)
        solver_name = options.cvxpy_solver
        kwargs = {}
        limit = options.remaining(floor=0.01)
        if solver_name == "HIGHS":
            kwargs["mip_rel_gap"] = float(options.mip_gap)
            kwargs["random_seed"] = int(options.seed)
            if limit is not None:
                kwargs["time_limit"] = float(limit)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cvx_problem.solve(solver=solver_name, verbose=bool(options.verbose), **kwargs)
        except cp.error.SolverError as error:
            stopped = options.expired()
            return RawResult(Status.TIME_LIMIT if stopped else Status.ERROR, None, math.nan,
                             f"cvxpy/{solver_name}: {error}")
        status_code = cvx_problem.status
        status = status_code  # warnings such as "Solution may be inaccurate" go into the message
        if caught:
            status = f"{status_code} ({'; '.join(str(w.message).split('.')[0] for w in caught)})"
        if status_code in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return RawResult(Status.INFEASIBLE)
        stopped = status_code == cp.USER_LIMIT or options.expired()
        if x.value is None:
            return RawResult(Status.TIME_LIMIT if stopped else Status.ERROR, None, math.nan,
                             f"cvxpy/{solver_name} ended with status {status} and no solution")
        bound, source = _mip_dual_bound(cvx_problem), "HiGHS MIP dual bound"
        if not math.isfinite(bound):
            form = problem.standard_form()
            lp = solve_lp(form.c, form.A, form.row_lo, form.row_hi, time_limit=options.remaining(floor=1.0))
            bound, source = (lp.objective if lp.status == "optimal" else math.nan), "LP relaxation"
        if status_code == cp.OPTIMAL:
            raw_status = Status.OPTIMAL
        else:
            raw_status = Status.TIME_LIMIT if stopped else Status.FEASIBLE
        indices = np.flatnonzero(np.asarray(x.value) > 0.5)
        return RawResult(raw_status, indices, bound, f"cvxpy/{solver_name}: {status}; bound from the {source}")


def _mip_dual_bound(cvx_problem) -> float:
    """HiGHS's dual bound in the sense of our maximization (cvxpy may have minimized −cᵀx)."""
    info = getattr(cvx_problem.solver_stats, "extra_stats", None)
    bound = getattr(info, "mip_dual_bound", None)
    primal = getattr(info, "objective_function_value", None)
    if bound is None or primal is None or cvx_problem.value is None or not math.isfinite(bound):
        return math.nan
    flipped = abs(primal + cvx_problem.value) < abs(primal - cvx_problem.value)
    return -float(bound) if flipped else float(bound)
