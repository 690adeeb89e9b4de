"""Core LP + column pricing: a certified LP bound for pools too large to relax in one piece.

Only a small core of candidates can enter an optimal selection, so the LP is solved on a core
(columns ⊆ pool) and every other column is priced with the core LP's row duals y:
d = c − Aᵀy over all candidates (one sparse mat-vec). For *any* y whose signs match the row
bounds (y_r > 0 only on rows with a finite upper bound, y_r < 0 only with a finite lower bound),

    L(y) = Σ_r (y_r·hi_r if y_r > 0 else y_r·lo_r) + Σ_j max(0, d_j)

is an upper bound on the whole pool's LP, hence on its 0/1 optimum (Lagrangian duality with
0 ≤ x ≤ 1). So every round gives a valid bound, whatever produced y: simplex duals, interior-point
duals without crossover, or the duals of an LP cut short at a time limit (wrong-signed entries are
set to 0 first, which keeps L valid). The loop keeps the smallest L seen and stops when no column
outside the core prices positive (then L equals the core LP value up to tolerance).

Why the core LP is built the way it is (measured at 1M candidates, docs/solvers.md):
* one HiGHS model that grows: new columns are appended (``addCols``) and the previous basis is
  kept, so a round after the first is a few hundred simplex iterations instead of a cold solve
  (hard family 100k: 0.14 s warm vs 1.85 s cold);
* rows enter the model only when a core column touches them (a 1M pool has 176k rows, most of
  them per-video caps the core never meets);
* rows that x = 0 violates (floors, an exact budget) get an artificial column of cost −M, so the
  core LP is always feasible and its duals say which outside columns the floors need (a covering
  row pulls in its best columns by pricing instead of an infeasible core that grows blindly);
* partial pricing: each round adds at most ``add_cap`` of the most positive columns.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

DUAL_TOL = 1e-9  # |y_r| below this counts as 0 (solver noise on rows that cannot bind)
ART_TOL = 1e-7  # an artificial column above this means the core cannot meet its row yet


@dataclass
class PricingResult:
    """Outcome of the pricing loop.

    ``status``: "optimal" (converged: ``bound`` is the pool LP bound), "stopped" (time limit or
    round limit: ``bound`` is still a valid bound on the pool, only looser), "infeasible", "error".
    """

    status: str
    bound: float
    lp_value: float
    core: np.ndarray  # sorted candidate indices the last LP was solved on
    reduced: np.ndarray | None  # d = c − Aᵀy over all candidates at the duals of ``bound``
    x_core: np.ndarray | None  # LP solution on the core columns
    iterations: list[dict] = field(default_factory=list)
    message: str = ""

    @property
    def has_bound(self) -> bool:
        return self.status in ("optimal", "stopped") and math.isfinite(self.bound)


def column_major(form):
    """The standard form's matrix in CSC (fast column slices), built once per solve and shared by
    pricing and the greedy's neighbourhood MIPs (each conversion costs ~0.3 s per 8M nonzeros);
    ``release_columns`` drops it when the top-level solve ends."""
    csc = getattr(form, "_csc", None)
    if csc is None:
        csc = form.A.tocsc()
        csc.sort_indices()
        form._csc = csc
    return csc


def release_columns(form) -> None:
    form.__dict__.pop("_csc", None)


class Pricer:
    """The whole pool's standard form in CSC (fast column slices) plus the pricing arithmetic."""

    def __init__(self, problem) -> None:
        self.problem = problem
        self.form = problem.standard_form()

    @property
    def csc(self):
        """Built on first use (a run stopped by its time limit before pricing never pays for it)."""
        return column_major(self.form)

    def signed(self, y: np.ndarray) -> np.ndarray:
        """y with noise and every entry of the wrong sign set to 0 (L stays valid for the result)."""
        form = self.form
        y = np.where(np.abs(y) < DUAL_TOL, 0.0, y)
        y[(y > 0) & ~np.isfinite(form.row_hi)] = 0.0
        y[(y < 0) & ~np.isfinite(form.row_lo)] = 0.0
        return y

    def lagrangian(self, y: np.ndarray) -> tuple[float, np.ndarray]:
        """(L(y), d) for full-length row duals y; L = inf if a sign points at an infinite bound."""
        form = self.form
        y = np.where(np.abs(y) < DUAL_TOL, 0.0, y)
        up, down = y > 0, y < 0
        d = form.c - self.csc.T @ y
        if np.isinf(form.row_hi[up]).any() or np.isinf(form.row_lo[down]).any():
            return math.inf, d
        value = float(y[up] @ form.row_hi[up] + y[down] @ form.row_lo[down] + np.maximum(d, 0.0).sum())
        return value, d


def row_extremes(A, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(min, max, row ids) of ``data`` (A.data or a function of it) per non-empty row of CSR A,
    in one pass: empty rows hold no data, so the reduceat segments of the others stay aligned."""
    rows = np.flatnonzero(np.diff(A.indptr) > 0)
    if rows.size == 0:
        return np.zeros(0), np.zeros(0), rows
    starts = A.indptr[rows]
    return np.minimum.reduceat(data, starts), np.maximum.reduceat(data, starts), rows


def effective_budget(problem, form) -> int:
    """How many candidates a selection can hold, for sizing the core: the budget, or less when a
    row of unit coefficients caps a count (the paper goals' ``size_k`` group under a budget of N):
    hi_r plus the positive-score candidates outside row r. Only a size; no bound depends on it."""
    A = form.A
    k = int(problem.budget_hi)
    lo, hi, rows = row_extremes(A, A.data)
    unit = rows[(lo == 1.0) & (hi == 1.0) & np.isfinite(form.row_hi[rows])]
    if unit.size:
        positive = (form.c > 0).astype(np.float64)
        inside = (A @ positive)[unit]
        k = min(k, int(np.min(form.row_hi[unit] + positive.sum() - inside)))
    return max(1, k, int(problem.budget_lo))


def initial_core(problem, extra=None, top_factor: float = 1.2, floor_factor: float = 1.5,
                 floor_extra: int = 5, form=None) -> np.ndarray:
    """Candidates likely to matter: the top few × K overall (K: ``effective_budget``), the top
    ⌈floor_factor·lo⌉ + extra of every floored group, the top members of every floored share
    mask, and ``extra`` (a greedy selection, which also makes the core MIP feasible)."""
    n = problem.n
    scores = problem.scores
    k = effective_budget(problem, form if form is not None else problem.standard_form())
    keep = np.zeros(n, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    keep[order[: min(n, int(top_factor * k) + 1)]] = True
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    from gdo_opt.selection.families import CoreContext

    ctx = CoreContext(order, rank, k, float(floor_factor), int(floor_extra))
    for fam in problem.families:  # each family names the candidates its floors need
        members = fam.core_members(ctx)
        if members is not None:
            keep[members] = True
    if extra is not None and len(extra):
        keep[np.asarray(extra, dtype=np.int64)] = True
    return np.flatnonzero(keep)


class CoreLP:
    """One HiGHS LP over the growing core (see the module docstring: warm starts, lazy rows,
    artificial columns). ``solve`` returns full-length row duals for pricing."""

    def __init__(self, pricer: Pricer, threads=None, verbose: bool = False, big_m: float | None = None) -> None:
        from gdo_opt.solvers import highs as hs

        self.pricer = pricer
        form = pricer.form
        m = form.A.shape[0]
        self.model_row = np.full(m, -1, dtype=np.int64)
        self.rows = np.zeros(0, dtype=np.int64)  # model row -> standard-form row
        self.cols = np.zeros(0, dtype=np.int64)  # model column -> candidate (artificials excluded)
        self.highs = hs.new_highs(verbose)
        hs.set_option(self.highs, "output_flag", bool(verbose))
        if threads is not None:
            hs.set_option(self.highs, "threads", int(threads))
        import highspy

        self.highs.changeObjectiveSense(highspy.ObjSense.kMaximize)
        # rows x = 0 violates need an artificial column (+1 for a floor, −1 for hi < 0)
        need = np.flatnonzero((form.row_lo > 0) | (form.row_hi < 0))
        self.art_rows = need
        scale = 1.0 + float(np.abs(form.c).max()) if form.c.size else 1.0
        if need.size:
            # M_r prices one unit of row r above anything a real column is worth per unit of r
            smallest = np.ones(m)
            low, _, rows = row_extremes(form.A, np.abs(form.A.data))
            smallest[rows] = low
            self.big_m = (big_m or 1e3) * scale / np.maximum(smallest[need], 1e-6)
        else:
            self.big_m = np.zeros(0)
        self.n_art = 0
        self._ensure_rows(need)
        if need.size:
            sign = np.where(form.row_lo[need] > 0, 1.0, -1.0)
            k = need.size
            self.highs.addCols(k, -self.big_m, np.zeros(k), np.full(k, np.inf), k,
                               np.arange(k, dtype=np.int32), self.model_row[need].astype(np.int32), sign)
            self.n_art = k

    def _ensure_rows(self, rows: np.ndarray) -> None:
        new = rows[self.model_row[rows] < 0]
        if new.size == 0:
            return
        form = self.pricer.form
        self.model_row[new] = self.rows.size + np.arange(new.size)
        self.rows = np.concatenate([self.rows, new])
        self.highs.addRows(int(new.size), form.row_lo[new].astype(np.float64), form.row_hi[new].astype(np.float64),
                           0, np.zeros(new.size, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))

    def add(self, cols: np.ndarray) -> None:
        """Append candidates ``cols`` (not yet in the model) as columns; the basis is kept."""
        cols = np.asarray(cols, dtype=np.int64)
        if cols.size == 0:
            return
        sub = self.pricer.csc[:, cols]
        self._ensure_rows(np.unique(sub.indices))
        form = self.pricer.form
        self.highs.addCols(int(cols.size), form.c[cols].astype(np.float64), np.zeros(cols.size), np.ones(cols.size),
                           int(sub.nnz), sub.indptr[:-1].astype(np.int32),
                           self.model_row[sub.indices].astype(np.int32), sub.data.astype(np.float64))
        self.cols = np.concatenate([self.cols, cols])

    def raise_big_m(self, factor: float) -> None:
        if self.n_art:
            self.big_m = self.big_m * factor
            self.highs.changeColsCost(self.n_art, np.arange(self.n_art, dtype=np.int32), -self.big_m)

    def solve(self, time_limit, method: str, crossover: bool = True) -> dict:
        """Run the LP; returns status, objective, full-length duals y (None without any), x on
        ``self.cols`` and the artificials' total."""
        import highspy
        from gdo_opt.solvers import highs as hs

        h = self.highs
        hs.set_option(h, "solver", method)
        hs.set_option(h, "run_crossover", "on" if crossover else "off")
        # HiGHS checks time_limit against the model's run clock, which adds up over every run()
        # of this object (measured: a second run with a 1 s limit stopped at once after a 3 s
        # first one), so the limit is set past the time already run
        limit = math.inf if time_limit is None else float(h.getRunTime()) + float(time_limit)
        hs.set_option(h, "time_limit", limit)
        hs.run_guarded(h, time_limit)
        status = h.getModelStatus()
        sol = h.getSolution()
        S = highspy.HighsModelStatus
        out = dict(status="optimal" if status == S.kOptimal else (
            "infeasible" if status in (S.kInfeasible, S.kUnboundedOrInfeasible) else "stopped"),
            highs_status=h.modelStatusToString(status), y=None, x=None, art=math.inf,
            objective=float(h.getInfo().objective_function_value),
            iterations=int(h.getInfo().simplex_iteration_count) + int(h.getInfo().ipm_iteration_count))
        if sol.dual_valid:
            y = np.zeros(self.model_row.size)
            y[self.rows] = np.asarray(sol.row_dual, dtype=np.float64)
            out["y"] = y
        if sol.value_valid:
            x = np.asarray(sol.col_value, dtype=np.float64)
            out["art"] = float(np.abs(x[: self.n_art]).sum())
            out["x"] = x[self.n_art:]
        return out

    def close(self) -> None:
        """Free the LP's HiGHS model (see ``solvers.highs.release``)."""
        from gdo_opt.solvers import highs as hs

        hs.release(self.highs)


def choose_method(nnz: int, method: str) -> tuple[str, bool]:
    """HiGHS LP method for the first core LP: simplex up to ``IPM_MIN_NNZ`` (it warm-starts every
    later round), the interior point with crossover above (its basis still warm-starts them)."""
    if method == "choose":
        return ("ipm", True) if nnz > IPM_MIN_NNZ else ("simplex", True)
    if method == "ipm-nocrossover":
        return "ipm", False
    return method, True


IPM_MIN_NNZ = 3_000_000
STALL_S = 60.0  # a simplex round longer than this counts as stalled (see ``price``)


def price(problem, core: np.ndarray, pricer: Pricer | None = None, deadline: float | None = None,
          threads=None, max_rounds: int = 60, add_cap: int | None = None, tol: float = 1e-9,
          method: str = "choose", on_round=None, big_m: float | None = None,
          stall_s: float = STALL_S) -> PricingResult:
    """Solve the LP on ``core``, price all columns, add the most positive ones, repeat until none.

    ``add_cap``: columns added per round (default max(2000, core/10)). ``method``: the first
    LP's method ("choose", "simplex", "ipm", "ipm-nocrossover"); later rounds use the simplex from
    the previous basis. A simplex LP that runs past ``stall_s`` is stopped and that round, and
    every later one, goes to the interior point without crossover (its duals bound and price as
    well; there is no basis to warm-start from any more). ``on_round(dict)`` is called after every round (progress of long runs).
    """
    pricer = pricer or Pricer(problem)
    n = problem.n
    if deadline is not None and time.perf_counter() >= deadline - 0.05:
        return PricingResult("error", math.nan, math.nan, np.asarray(core, dtype=np.int64), None, None, [],
                             "no valid duals before the time limit (pricing not started)")
    in_core = np.zeros(n, dtype=bool)
    core = np.unique(np.asarray(core, dtype=np.int64))
    in_core[core] = True
    lp = CoreLP(pricer, threads=threads, big_m=big_m)
    try:
        return _price_loop(problem, pricer, lp, core, in_core, deadline, max_rounds, add_cap, tol, method, on_round,
                           stall_s)
    finally:
        lp.close()


def _price_loop(problem, pricer, lp, core, in_core, deadline, max_rounds, add_cap, tol, method, on_round,
                stall_s) -> PricingResult:
    form = pricer.form
    n = problem.n
    lp.add(core)
    iterations: list[dict] = []
    best = (math.inf, None, None, None)  # (bound, d, x on lp.cols, cols)
    scale = max(1.0, float(np.abs(form.c).max())) if n else 1.0
    escalations = 0
    first_method = choose_method(int(pricer.csc[:, core].nnz), method)
    later_method = ("ipm", False) if first_method == ("ipm", False) else ("simplex", True)
    for round_ in range(max_rounds):
        remaining = None if deadline is None else deadline - time.perf_counter()
        if remaining is not None and remaining <= 0.05:
            break
        start = time.perf_counter()
        meth, crossover = first_method if round_ == 0 else later_method
        guard = remaining if meth != "simplex" else min(stall_s, remaining if remaining is not None else math.inf)
        res = lp.solve(guard, meth, crossover)
        if res["status"] == "stopped" and meth == "simplex" and (remaining is None or remaining > guard + 1.0):
            # the simplex stalled: the interior point without crossover, whose duals price as well
            later_method = ("ipm", False)
            meth, crossover = later_method
            left = None if deadline is None else deadline - time.perf_counter()
            res = lp.solve(left, meth, crossover)
        lp_seconds = time.perf_counter() - start
        if res["status"] == "infeasible":  # cannot happen with artificials; never claim it from a core
            return _full_lp_verdict(pricer, deadline, iterations, "core LP reported infeasible")
        start = time.perf_counter()
        bound, positive, d = math.inf, np.zeros(0, dtype=np.int64), None
        if res["y"] is not None:
            bound, d = pricer.lagrangian(pricer.signed(res["y"]))
            positive = np.flatnonzero((d > tol * scale) & ~in_core)
            if bound < best[0]:
                best = (bound, d, res["x"], lp.cols.copy())
        price_seconds = time.perf_counter() - start
        cap = add_cap or max(2000, lp.cols.size // 10)
        added = positive if positive.size <= cap else positive[np.argpartition(-d[positive], cap - 1)[:cap]]
        art = res["art"]
        iterations.append(dict(round=round_, core=int(lp.cols.size), rows=int(lp.rows.size), method=meth,
                               lp=res["objective"] if res["status"] == "optimal" else res["status"],
                               bound=bound, best_bound=best[0], positive=int(positive.size), added=int(added.size),
                               artificial=art, simplex_iterations=res["iterations"],
                               lp_seconds=lp_seconds, price_seconds=price_seconds))
        if on_round is not None:
            on_round(dict(iterations[-1], event="pricing"))
        if res["status"] != "optimal":
            break  # stopped at the time limit: best is still valid
        if positive.size == 0:
            if art <= ART_TOL:
                # L(y) equals the core LP value up to tolerance. The bound is reported with the d of
                # the same y: callers fix columns by L + d_j < incumbent, valid only for one y.
                x_core, cols = _sorted_solution(lp.cols, res["x"])
                if math.isfinite(bound):
                    return PricingResult("optimal", bound, float(res["objective"]), cols, d, x_core, iterations, "")
                break  # no duals at the optimum (not seen): report the best round as stopped
            if escalations >= 2:
                return _full_lp_verdict(pricer, deadline, iterations,
                                        f"artificial columns still used ({art:.3g}) at M × 1e6")
            escalations += 1
            lp.raise_big_m(1e3)
            continue
        in_core[added] = True
        lp.add(added)
    bound, d, x, cols = best
    if not math.isfinite(bound):
        return PricingResult("error", math.nan, math.nan, np.flatnonzero(in_core), None, None, iterations,
                             "no valid duals before the time limit" if deadline is not None
                             and time.perf_counter() >= deadline else "pricing did not produce valid duals")
    x_core, cols = _sorted_solution(cols, x) if x is not None else (None, np.sort(cols))
    why = "time limit" if deadline is not None and time.perf_counter() >= deadline else f"{len(iterations)} rounds"
    return PricingResult("stopped", bound, math.nan, cols, d, x_core, iterations,
                         f"pricing stopped ({why}): bound is the smallest L(y) seen")


def _sorted_solution(cols: np.ndarray, x: np.ndarray | None):
    order = np.argsort(cols, kind="stable")
    return (None if x is None else x[order]), cols[order]


def _full_lp_verdict(pricer: Pricer, deadline, iterations, why: str) -> PricingResult:
    """Only the whole pool's LP can prove infeasibility; a core never does."""
    from gdo_opt.solvers.highs import solve_lp

    form = pricer.form
    remaining = None if deadline is None else max(0.05, deadline - time.perf_counter())
    lp = solve_lp(form.c, form.A, form.row_lo, form.row_hi, time_limit=remaining)
    cols = np.arange(pricer.problem.n)
    if lp.status == "infeasible":
        return PricingResult("infeasible", math.nan, math.nan, cols, None, None, iterations,
                             "the LP relaxation of the whole pool is infeasible")
    if lp.status == "optimal":
        bound, d = pricer.lagrangian(pricer.signed(lp.row_dual))
        return PricingResult("optimal", max(bound, lp.objective), lp.objective, cols, d, lp.x, iterations,
                             f"{why}: solved the whole pool's LP")
    return PricingResult("error", math.nan, math.nan, cols, None, None, iterations, f"{why}; whole-pool LP {lp.status}")


def lp_bound(problem, pricer: Pricer | None = None, extra=None, deadline=None, threads=None,
             direct_max_nnz: int = 300_000, on_round=None, core=None) -> PricingResult:
    """A certified LP bound: the plain LP for small models, the core + pricing loop otherwise
    (``core``: the initial core, default ``initial_core`` with ``extra``)."""
    pricer = pricer or Pricer(problem)
    if pricer.form.A.nnz <= direct_max_nnz:
        core = np.arange(problem.n)
    elif core is None:
        core = initial_core(problem, extra=extra, form=pricer.form)
    return price(problem, core, pricer=pricer, deadline=deadline, threads=threads, on_round=on_round)


__all__ = ["CoreLP", "PricingResult", "Pricer", "column_major", "effective_budget", "initial_core", "lp_bound", "price",
           "release_columns"]
