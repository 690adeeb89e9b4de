"""Exact MIP (and LP relaxations) with HiGHS through highspy.

The whole model is passed at once from CSR arrays (``addVars`` + ``addRows`` +
``changeColsIntegrality``: about 0.4 s at one million candidates). Options go through
``set_option``, which raises when HiGHS rejects a name or a value. HiGHS's own ``time_limit`` is
not a hard stop, so every run has a watchdog that calls ``cancelSolve`` just after the limit; it
only works with ``HandleUserInterrupt`` on (highspy ≥ 1.8), which ``new_highs`` sets. A cancelled
run reports ``time_limit`` with its incumbent, if it has one.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from gdo_opt.solvers.base import BaseBackend, RawResult, SolveOptions, Status

from gdo_opt.errors import SolverOptionError

_BANNER_SILENCED = False
WATCHDOG_SLACK_S = 0.5  # cancel this long after the limit if HiGHS has not stopped by itself


def new_highs(verbose: bool = False):
    """A Highs instance (banner kept off stdout unless verbose) that honours ``cancelSolve``."""
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
    set_option(highs, "output_flag", bool(verbose))
    if hasattr(type(highs), "HandleUserInterrupt"):
        highs.HandleUserInterrupt = True
    return highs


def release(highs) -> None:
    """Free a finished Highs object's model and solver memory now. highspy's wrapper refers to
    itself through its callback lists, so only the cyclic garbage collector frees it, possibly
    much later: at 200k pairs an LP's ~15 MB stayed resident through the rest of ``select``."""
    try:
        highs.clear()
    except (AttributeError, RuntimeError):  # an older highspy without clear(): the collector frees it
        pass


def set_option(highs, key: str, value) -> None:
    """``setOptionValue`` that raises (naming the option) when HiGHS rejects it."""
    import highspy

    try:
        status = highs.setOptionValue(key, value)
    except (TypeError, RuntimeError) as error:
        raise SolverOptionError(key, f"HiGHS rejected this option: {error}", value) from None
    if status == highspy.HighsStatus.kError:
        raise SolverOptionError(key, "HiGHS rejected this option (unknown name or bad value)", value)


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
        set_option(highs, "time_limit", float(time_limit))
    set_option(highs, "mip_rel_gap", float(mip_gap))
    set_option(highs, "random_seed", int(seed))
    if threads is not None:
        set_option(highs, "threads", int(threads))
    for key, value in (extra or {}).items():
        set_option(highs, key, value)


def run_guarded(highs, time_limit: float | None) -> bool:
    """``highs.run()`` with a watchdog that cancels it just after ``time_limit``; True if it fired."""
    if time_limit is None:
        highs.run()
        return False
    fired = threading.Event()

    def cancel() -> None:
        fired.set()
        highs.cancelSolve()

    timer = threading.Timer(float(time_limit) + WATCHDOG_SLACK_S, cancel)
    timer.daemon = True
    timer.start()
    try:
        highs.run()
    finally:
        timer.cancel()
    return fired.is_set()


def watch_incumbents(highs, options: SolveOptions, **label) -> None:
    """Report every improving MIP solution (objective, bound, gap, nodes) to ``options.progress``."""
    if options.progress is None or not hasattr(type(highs), "cbMipImprovingSolution"):
        return

    def on_incumbent(event) -> None:
        out = event.data_out
        options.report("incumbent", **label, objective=float(out.objective_function_value),
                       bound=float(out.mip_dual_bound), gap=float(out.mip_gap), nodes=int(out.mip_node_count))

    highs.cbMipImprovingSolution += on_incumbent


@dataclass
class LPResult:
    """An LP relaxation's answer: objective = a valid upper bound when status is "optimal"."""

    status: str  # "optimal" | "infeasible" | "time_limit" | "error"
    objective: float
    x: np.ndarray
    row_dual: np.ndarray
    col_dual: np.ndarray


def solve_lp(c, A, row_lo, row_hi, time_limit=None, threads=None, method: str = "choose", verbose=False):
    """LP relaxation (0 ≤ x ≤ 1). ``method``: "choose", "simplex" or "ipm" (with crossover)."""
    highs = build_model(c, A, row_lo, row_hi, integral=False, verbose=verbose)
    try:
        return _lp_result(highs, int(A.shape[1]), time_limit, threads, method)
    finally:
        release(highs)


def _lp_result(highs, n: int, time_limit, threads, method: str) -> LPResult:
    import highspy

    apply_options(highs, time_limit=time_limit, threads=threads)
    set_option(highs, "solver", method)
    run_guarded(highs, time_limit)
    model_status = highs.getModelStatus()
    if model_status == highspy.HighsModelStatus.kOptimal:
        solution = highs.getSolution()
        return LPResult(
            "optimal",
            float(highs.getInfo().objective_function_value),
            np.asarray(solution.col_value, dtype=np.float64),
            np.asarray(solution.row_dual, dtype=np.float64),
            np.asarray(solution.col_dual, dtype=np.float64),
        )
    if model_status == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    elif model_status in _stopped_statuses():
        status = "time_limit"
    else:
        status = "error"
    empty = np.zeros(0)
    return LPResult(status, math.nan, np.zeros(n), empty, empty)


def _stopped_statuses():
    import highspy

    s = highspy.HighsModelStatus
    return (s.kTimeLimit, s.kInterrupt, s.kIterationLimit, s.kSolutionLimit)


@dataclass
class HighsOptions(SolveOptions):
    """``highs_options``: raw HiGHS options by name (checked by HiGHS; a bad one raises)."""

    highs_options: dict = field(default_factory=dict)


class HighsBackend(BaseBackend):
    """Exact MIP on the whole problem; status, bound and gap straight from HiGHS."""

    name = "highs"
    Options = HighsOptions
    requires = ("highspy",)

    def solve(self, problem, options: HighsOptions) -> RawResult:
        form = problem.standard_form()
        highs = build_model(form.c, form.A, form.row_lo, form.row_hi, integral=True, verbose=options.verbose)
        limit = options.remaining()
        apply_options(highs, limit, options.mip_gap, options.seed, options.threads, options.highs_options)
        options.report("mip", rows=int(form.A.shape[0]), columns=problem.n, nnz=int(form.A.nnz))
        watch_incumbents(highs, options)
        run_guarded(highs, limit)
        return result_from_highs(highs)


def result_from_highs(highs, columns=None) -> RawResult:
    """Turn a solved Highs MIP into a RawResult (``columns`` maps model columns to candidates), then
    free its model (``release``): every caller is done with it."""
    try:
        return _result(highs, columns)
    finally:
        release(highs)


def _result(highs, columns) -> RawResult:
    import highspy

    status_enum = highspy.HighsModelStatus
    model_status = highs.getModelStatus()
    info = highs.getInfo()
    text = highs.modelStatusToString(model_status)
    if model_status in (status_enum.kInfeasible, status_enum.kUnboundedOrInfeasible):
        return RawResult(Status.INFEASIBLE)
    stopped = model_status in _stopped_statuses()
    has_solution = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
    bound = float(info.mip_dual_bound)
    if not math.isfinite(bound):
        bound = math.nan
    if not has_solution:
        status = Status.TIME_LIMIT if stopped else Status.ERROR
        return RawResult(status, None, bound, f"HiGHS stopped with '{text}' and no feasible solution")
    x = np.asarray(highs.getSolution().col_value)
    chosen = np.flatnonzero(x > 0.5)
    if columns is not None:
        chosen = np.asarray(columns)[chosen]
    if model_status == status_enum.kOptimal:
        status = Status.OPTIMAL
    else:
        status = Status.TIME_LIMIT if stopped else Status.FEASIBLE
    return RawResult(
        status, np.sort(chosen.astype(np.int64)), bound, f"HiGHS: {text}",
        dict(mip_node_count=int(info.mip_node_count), mip_gap=float(info.mip_gap),
             rows=int(highs.getNumRow()), cols=int(highs.getNumCol())),
    )
