"""Multipliers for the greedy's Lagrangian from one small LP: the relaxation on a core of a few
budgets' worth of candidates, made elastic so that it always has duals.

Any sign-correct multipliers give a valid Lagrangian bound (``lagrange.py``), so the core LP
need not be feasible, optimal or priced out: its duals are a starting point, not a certificate.
Elastic columns (one per row and side, at a penalty far above any score) make it feasible, so
HiGHS returns duals even when the core cannot meet a floor or a covering row by itself.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def core_columns(problem, reduced: np.ndarray, inner: np.ndarray, extra=None, top_factor: float = 3.0,
                 floor_factor: float = 1.5, floor_extra: int = 3) -> np.ndarray:
    """The top ``top_factor``·K by reduced cost, the top members of every floored group and
    share mask (in reduced-cost order), the Lagrangian's inner maximizer and ``extra``."""
    from gdo_opt.selection.families import CoreContext

    n = problem.n
    keep = np.zeros(n, dtype=bool)
    m = min(n, int(top_factor * max(1, problem.budget_hi)) + 1)
    keep[np.argpartition(-reduced, m - 1)[:m] if m < n else np.arange(n)] = True
    order = np.argsort(-reduced, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    ctx = CoreContext(order, rank, int(problem.budget_hi), float(floor_factor), int(floor_extra))
    for fam in problem.families:
        members = fam.core_members(ctx)
        if members is not None:
            keep[members] = True
    keep[np.asarray(inner, dtype=np.int64)] = True
    if extra is not None and len(extra):
        keep[np.asarray(extra, dtype=np.int64)] = True
    return np.flatnonzero(keep)


def core_duals(form, core: np.ndarray, time_limit: float | None, threads=None):
    """(status, rows, row duals) of the elastic LP on ``core``; duals None if HiGHS gave none."""
    from gdo_opt.solvers.highs import solve_lp

    A = sp.csr_matrix(sp.csc_matrix(form.A)[:, core])
    rows = np.flatnonzero(np.diff(A.indptr) > 0)
    A = A[rows]
    lo, hi = form.row_lo[rows], form.row_hi[rows]
    c = form.c[core]
    # one elastic column per row and side, scaled so that x ≤ 1 covers any violation
    span = np.asarray(abs(A).sum(axis=1)).ravel() + np.where(np.isfinite(lo), np.abs(lo), 0.0) \
        + np.where(np.isfinite(hi), np.abs(hi), 0.0) + 1.0
    penalty = 100.0 * (float(np.abs(c).max()) + 1.0)  # per unit of row activity, above any score
    m = rows.size
    eye = sp.diags(span).tocsc()
    A_ext = sp.hstack([A.tocsc(), eye, -eye], format="csr")
    c_ext = np.concatenate([c, -penalty * span, -penalty * span])
    lp = solve_lp(c_ext, A_ext, lo, hi, time_limit=time_limit, threads=threads)
    if lp.status != "optimal" or lp.row_dual.size != m:
        return lp.status, rows, None
    return lp.status, rows, lp.row_dual
