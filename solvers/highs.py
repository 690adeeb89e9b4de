"""Exact MIP (and LP relaxations) with HiGHS through highspy.

The whole model is passed at once from CSR arrays (``addVars`` + ``addRows`` +
``changeColsIntegrality``: about 0.4 s at one million candidates). HiGHS's ``time_limit`` is not a
hard stop, so a watchdog thread cancels the solve shortly after the limit.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

_BANNER_SILENCED = False


def new_highs(verbose: bool = False):
    """A Highs instance; the once-per-process banner is kept off stdout unless verbose."""
    global _BANNER_SILENCED
    import highspy

    if _BANNER_SILENCED or verbose:
        highs = highspy.Highs()
    else:
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SILENCED = True
    highs.setOptionValue("output_flag", bool(verbose))
    return highs


def build_model(c, A: sp.csr_matrix, row_lo, row_hi, integral: bool, verbose: bool = False):
    """max cᵀx, row_lo ≤ Ax ≤ row_hi, 0 ≤ x ≤ 1 (integral: binary) as a ready Highs object."""
    import highspy

    highs = new_highs(verbose)
    n = int(A.shape[1])
    cols = np.arange(n, dtype=np.int32)
    highs.addVars(n, np.zeros(n), np.ones(n))
    highs.changeColsCost(n, cols, np.asarray(c, dtype=np.float64))
    A = sp.csr_matrix(A)
    if A.shape[0]:
        highs.addRows(
            int(A.shape[0]),
            np.asarray(row_lo, dtype=np.float64),
            np.asarray(row_hi, dtype=np.float64),
            int(A.nnz),
            A.indptr[:-1].astype(np.int32),
            A.indices.astype(np.int32),
            A.data.astype(np.float64),
        )
    if integral:
        kinds = np.full(n, highspy.HighsVarType.kInteger)
        highs.changeColsIntegrality(n, cols, kinds)
    highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
    return highs


def apply_options(highs, time_limit=None, mip_gap=1e-4, seed=0, threads=None, extra=None) -> None:
    if time_limit is not None:
        highs.setOptionValue("time_limit", float(time_limit))
    highs.setOptionValue("mip_rel_gap", float(mip_gap))
    highs.setOptionValue("random_seed", int(seed))
    if threads is not None:
        highs.setOptionValue("threads", int(threads))
    for key, value in (extra or {}).items():
        highs.setOptionValue(key, value)


def run_guarded(highs, time_limit: float | None) -> None:
    """``highs.run()`` with a watchdog: cancel at 1.1x the limit + 5 s if HiGHS overruns it."""
    if time_limit is None:
        highs.run()
        return
    timer = threading.Timer(1.1 * float(time_limit) + 5.0, highs.cancelSolve)
    timer.daemon = True
    timer.start()
    try:
        highs.run()
    finally:
        timer.cancel()


@dataclass
class LPResult:
    """An LP relaxation's answer: objective = a valid upper bound when status is "optimal"."""

    status: str
    objective: float
    x: np.ndarray
    row_dual: np.ndarray
    col_dual: np.ndarray


def solve_lp(c, A, row_lo, row_hi, time_limit=None, threads=None, method: str = "choose", verbose=False):
    """LP relaxation (0 ≤ x ≤ 1). ``method``: "choose", "simplex" or "ipm" (with crossover)."""
    import highspy

    highs = build_model(c, A, row_lo, row_hi, integral=False, verbose=verbose)
    apply_options(highs, time_limit=time_limit, threads=threads)
    highs.setOptionValue("solver", method)
    run_guarded(highs, time_limit)
    model_status = highs.getModelStatus()
    n = int(A.shape[1])
    if model_status == highspy.HighsModelStatus.kOptimal:
        solution = highs.getSolution()
        return LPResult(
            "optimal",
            float(highs.getInfo().objective_function_value),
            np.asarray(solution.col_value, dtype=np.float64),
            np.asarray(solution.row_dual, dtype=np.float64),
            np.asarray(solution.col_dual, dtype=np.float64),
        )
    status = "infeasible" if model_status == highspy.HighsModelStatus.kInfeasible else "error"
    empty = np.zeros(0)
    return LPResult(status, math.nan, np.zeros(n), empty, empty)


def solve(problem, options):
    """Exact MIP on the whole problem; status, bound and gap straight from HiGHS."""

    from gdo_opt.selection.diagnose import explain_infeasible

    form = problem.standard_form()
    highs = build_model(form.c, form.A, form.row_lo, form.row_hi, integral=True, verbose=options.verbose)
    extra = dict(options.extra)
    apply_options(highs, options.time_limit, options.mip_gap, options.seed, options.threads, extra)
    run_guarded(highs, options.time_limit)
    return selection_from_highs(problem, highs, "highs", explain_infeasible)


def selection_from_highs(problem, highs, solver_name: str, explain, columns=None):
    """Turn a solved Highs MIP into a Selection (``columns`` maps model columns to candidates)."""
    import highspy

    status_enum = highspy.HighsModelStatus
    model_status = highs.getModelStatus()
    info = highs.getInfo()
    text = highs.modelStatusToString(model_status)
    if model_status in (status_enum.kInfeasible, status_enum.kUnboundedOrInfeasible):
        return problem.empty_selection(solver_name, "infeasible", explain(problem))
    has_solution = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
    bound = float(info.mip_dual_bound)
    if not math.isfinite(bound):
        bound = math.nan
    if not has_solution:
        return problem.empty_selection(
            solver_name, "error", f"HiGHS stopped with '{text}' and no feasible solution", bound
        )
    x = np.asarray(highs.getSolution().col_value)
    chosen = np.flatnonzero(x > 0.5)
    if columns is not None:
        chosen = np.asarray(columns)[chosen]
    status = "optimal" if model_status == status_enum.kOptimal else "feasible"
    sel = problem.empty_selection(solver_name, status, f"HiGHS: {text}", bound)
    sel.indices = np.sort(chosen.astype(np.int64))
    sel.objective = float(info.objective_function_value)
    sel.info.update(
        mip_node_count=int(info.mip_node_count),
        mip_gap=float(info.mip_gap),
        rows=int(highs.getNumRow()),
        cols=int(highs.getNumCol()),
    )
    return sel
