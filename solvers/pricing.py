"""Core LP + column pricing: a certified LP bound for pools too large to relax in one piece.

Only a small core of candidates can enter an optimal selection, so the LP is solved on a core
(columns ⊆ pool) and every other column is priced with the core LP's row duals y:
d = c − Aᵀy over all candidates (one sparse mat-vec). For *any* y whose signs match the row
bounds (y_r > 0 only on rows with a finite upper bound, y_r < 0 only with a finite lower bound),

    L(y) = Σ_r (y_r·hi_r if y_r > 0 else y_r·lo_r) + Σ_j max(0, d_j)

is an upper bound on the whole pool's LP, hence on its 0/1 optimum (Lagrangian duality with
0 ≤ x ≤ 1). When no column outside the core prices positive, L(y) equals the core LP value; so
the loop adds positive columns until none remain and the core bound holds for the whole pool.
HiGHS reports duals of a maximization with exactly this sign (checked: its ``col_dual`` = d).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

DUAL_TOL = 1e-9  # |y_r| below this counts as 0 (solver noise on rows that cannot bind)


@dataclass
class PricingResult:
    """Outcome of the pricing loop; ``bound`` is valid for the whole pool when status is optimal."""

    status: str  # "optimal" | "infeasible" | "error"
    bound: float
    lp_value: float
    core: np.ndarray  # sorted candidate indices the final LP was solved on
    reduced: np.ndarray | None  # d = c − Aᵀy over all candidates at the final duals
    x_core: np.ndarray | None  # LP solution on the core columns
    iterations: list[dict] = field(default_factory=list)
    message: str = ""


class Pricer:
    """The whole pool's standard form in CSC (fast column slices) plus the pricing arithmetic."""

    def __init__(self, problem) -> None:
        self.problem = problem
        self.form = problem.standard_form()
        self.csc = self.form.A.tocsc()
        self.csc.sort_indices()

    def lagrangian(self, y: np.ndarray) -> tuple[float, np.ndarray]:
        """(L(y), d) for full-length row duals y; L = inf if a sign points at an infinite bound."""
        form = self.form
        y = np.where(np.abs(y) < DUAL_TOL, 0.0, y)
        up, down = y > 0, y < 0
        if np.isinf(form.row_hi[up]).any() or np.isinf(form.row_lo[down]).any():
            return math.inf, form.c - self.csc.T @ y
        d = form.c - self.csc.T @ y
        value = float(y[up] @ form.row_hi[up] + y[down] @ form.row_lo[down] + np.maximum(d, 0.0).sum())
        return value, d

    def sub_lp(self, cols: np.ndarray, time_limit=None, threads=None, method="choose"):
        """LP on a subset of columns; rows without a core member are dropped (their dual is 0)."""
        from gdo_opt.solvers.highs import solve_lp

        form = self.form
        sub = self.csc[:, cols].tocsr()
        nnz_row = np.diff(sub.indptr)
        empty_bad = (nnz_row == 0) & ((form.row_lo > 0) | (form.row_hi < 0))
        if empty_bad.any():
            row = int(np.flatnonzero(empty_bad)[0])
            return None, np.zeros(0, dtype=np.int64), f"no core candidate in {self.problem.row_name(row)}"
        rows = np.flatnonzero(nnz_row > 0)
        lp = solve_lp(
            form.c[cols], sub[rows], form.row_lo[rows], form.row_hi[rows],
            time_limit=time_limit, threads=threads, method=method,
        )
        return lp, rows, ""


def initial_core(problem, extra=None, top_factor: float = 1.2, floor_factor: float = 1.5,
                 floor_extra: int = 5) -> np.ndarray:
    """Candidates likely to matter: the top few × K overall, the top ⌈floor_factor·lo⌉ + extra of
    every floored group, the top members of every floored share mask, and ``extra`` (a greedy
    selection, which also makes the core LP and MIP feasible)."""
    n = problem.n
    scores = problem.scores
    keep = np.zeros(n, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    keep[order[: min(n, int(top_factor * max(1, problem.budget_hi)) + 1)]] = True
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    from gdo_opt.selection.families import CoreContext

    ctx = CoreContext(order, rank, int(problem.budget_hi), float(floor_factor), int(floor_extra))
    for fam in problem.families:  # each family names the candidates its floors need
        members = fam.core_members(ctx)
        if members is not None:
            keep[members] = True
    if extra is not None and len(extra):
        keep[np.asarray(extra, dtype=np.int64)] = True
    return np.flatnonzero(keep)


def price(problem, core: np.ndarray, pricer: Pricer | None = None, deadline: float | None = None,
          threads=None, max_rounds: int = 50, add_cap: int | None = None, tol: float = 1e-9,
          method: str = "choose", grow_on_infeasible: int = 3, on_round=None) -> PricingResult:
    """Solve the LP on ``core``, price all columns, add the positive ones, repeat until none.

    An infeasible core LP is grown (every member of the rows that had too few core members, then
    the next best candidates) up to ``grow_on_infeasible`` times before the full pool is tried.
    ``on_round(dict)`` is called after every round (progress reports of long runs).
    """
    pricer = pricer or Pricer(problem)
    form = pricer.form
    n = problem.n
    in_core = np.zeros(n, dtype=bool)
    in_core[np.asarray(core, dtype=np.int64)] = True
    iterations: list[dict] = []
    grows = 0
    for round_ in range(max_rounds):
        cols = np.flatnonzero(in_core)
        remaining = None if deadline is None else max(0.05, deadline - time.perf_counter())
        start = time.perf_counter()
        lp, rows, why = pricer.sub_lp(cols, time_limit=remaining, threads=threads, method=method)
        lp_seconds = time.perf_counter() - start
        if lp is None or lp.status == "infeasible":
            if cols.size == n:
                return PricingResult("infeasible", math.nan, math.nan, cols, None, None, iterations,
                                     why or "the LP relaxation of the whole pool is infeasible")
            grows += 1
            grown = _grow(problem, pricer, in_core, why, force_all=grows > grow_on_infeasible)
            iterations.append(dict(round=round_, core=int(cols.size), lp="infeasible", added=int(grown),
                                   lp_seconds=lp_seconds, price_seconds=0.0, bound=math.nan))
            if on_round is not None:
                on_round(dict(iterations[-1], event="pricing"))
            continue
        if lp.status != "optimal":
            return PricingResult("error", math.nan, math.nan, cols, None, None, iterations,
                                 f"core LP stopped without an optimum ({lp.status}) on {cols.size} columns")
        start = time.perf_counter()
        y = np.zeros(form.A.shape[0])
        y[rows] = lp.row_dual
        bound, d = pricer.lagrangian(y)
        scale = max(1.0, float(np.abs(form.c).max()))
        positive = np.flatnonzero((d > tol * scale) & ~in_core)
        price_seconds = time.perf_counter() - start
        cap = add_cap or max(10_000, cols.size // 2)
        added = positive
        if positive.size > cap:
            added = positive[np.argsort(-d[positive], kind="stable")[:cap]]
        iterations.append(dict(round=round_, core=int(cols.size), lp=float(lp.objective), bound=bound,
                               positive=int(positive.size), added=int(added.size),
                               lp_seconds=lp_seconds, price_seconds=price_seconds))
        if on_round is not None:
            on_round(dict(iterations[-1], event="pricing"))
        if positive.size == 0:
            # L(y) equals the core LP value up to solver tolerance; take the larger to stay valid.
            return PricingResult("optimal", max(bound, float(lp.objective)), float(lp.objective), cols, d,
                                 lp.x, iterations, "")
        in_core[added] = True
        if deadline is not None and time.perf_counter() > deadline:
            return PricingResult("optimal" if math.isfinite(bound) else "error", bound, float(lp.objective),
                                 cols, d, lp.x, iterations, "time limit during pricing: bound is L(y)")
    cols = np.flatnonzero(in_core)
    return PricingResult("error", math.nan, math.nan, cols, None, None, iterations,
                         f"pricing did not converge in {max_rounds} rounds")


def _grow(problem, pricer: Pricer, in_core: np.ndarray, why: str, force_all: bool) -> int:
    """Enlarge an infeasible core: all members of rows with a floor the core barely covers."""
    before = int(in_core.sum())
    if force_all:
        in_core[:] = True
        return problem.n - before
    form = pricer.form
    A = form.A
    x = in_core.astype(np.float64)
    pos = A.copy()
    pos.data = np.maximum(pos.data, 0.0)
    reach = pos @ x  # the most each row can get from the core
    short = np.flatnonzero(np.isfinite(form.row_lo) & (form.row_lo > 0) & (reach < 2 * form.row_lo + 1))
    if short.size:
        cols = np.unique(pos[short].indices[pos[short].data > 0])
        in_core[cols] = True
    # and the next best candidates by score
    order = np.argsort(-problem.scores, kind="stable")
    outside = order[~in_core[order]]
    in_core[outside[: max(1000, before)]] = True
    return int(in_core.sum()) - before


def lp_bound(problem, pricer: Pricer | None = None, extra=None, deadline=None, threads=None,
             direct_max_nnz: int = 300_000, on_round=None) -> PricingResult:
    """A certified LP bound: the plain LP for small models, the core + pricing loop otherwise."""
    pricer = pricer or Pricer(problem)
    if pricer.form.A.nnz <= direct_max_nnz:
        core = np.arange(problem.n)
    else:
        core = initial_core(problem, extra=extra)
    return price(problem, core, pricer=pricer, deadline=deadline, threads=threads, on_round=on_round)


__all__ = ["PricingResult", "Pricer", "initial_core", "lp_bound", "price"]
