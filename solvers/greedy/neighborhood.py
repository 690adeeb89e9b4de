"""Phase 3 of the greedy: rows the swaps could not fix are fixed by a small MIP around the subset.

Swaps move one row at a time; a knapsack row, a covering row, tight quotas and shares that pull
against each other need coordinated moves. So the greedy frees a neighbourhood — the worst
selected items (removal candidates), the best unselected ones by the greedy's order, the
unselected members of every violated group and the best helpers of every violated row — fixes
everything else where it is, and asks HiGHS for the best subset of that neighbourhood (rows
shifted by the fixed part, a hard time limit). Its size grows with the violation, not with N, so
it costs seconds at 1M candidates; if it is infeasible the neighbourhood grows (a bounded number
of times) and, on small pools, becomes the whole pool.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp

GROWTH = 4  # the neighbourhood grows by this factor when it holds no feasible subset
WHOLE_POOL_N = 20_000  # pools this small get the whole pool as the last neighbourhood


def violated_rows(form, x: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    act = form.A @ x.astype(np.float64)
    return np.flatnonzero((act < form.row_lo - tol) | (act > form.row_hi + tol))


def neighbourhood(form, x: np.ndarray, priority: np.ndarray, bad: np.ndarray, size: int) -> np.ndarray:
    """Free columns around ``x``: ``size`` worst selected and best unselected items by
    ``priority``, every member of a violated row that can move it the right way (capped per row
    at ``size`` by priority), all sorted."""
    n = x.size
    sel, unsel = np.flatnonzero(x), np.flatnonzero(~x)
    free = np.zeros(n, dtype=bool)
    if sel.size:
        k = min(sel.size, size)
        free[sel[np.argpartition(priority[sel], k - 1)[:k]]] = True
    if unsel.size:
        k = min(unsel.size, size)
        free[unsel[np.argpartition(-priority[unsel], k - 1)[:k]]] = True
    A = form.A
    act = A @ x.astype(np.float64)
    for r in bad:  # one pass per violated row (bounded by the rows, not the candidates)
        cols = A.indices[A.indptr[r]:A.indptr[r + 1]]
        w = A.data[A.indptr[r]:A.indptr[r + 1]]
        up = act[r] < form.row_lo[r]
        # raise a floor: unselected with w > 0 in, selected with w < 0 out (mirror for a ceiling)
        helps = np.where(x[cols], (w < 0) if up else (w > 0), (w > 0) if up else (w < 0))
        cols, w = cols[helps], w[helps]
        if cols.size > size:
            cols = cols[np.argpartition(-np.abs(w) * np.exp(np.clip(priority[cols], -30, 30)
                                                         * np.where(x[cols], -1.0, 1.0)), size - 1)[:size]]
        free[cols] = True
    return np.flatnonzero(free)


def solve_neighbourhood(form, x: np.ndarray, free: np.ndarray, time_limit: float | None, mip_gap: float,
                        threads=None) -> tuple[str, np.ndarray | None]:
    """Best subset with only ``free`` columns moving; ("optimal"|"feasible", new x) or (status, None)."""
    from gdo_opt.solvers.base import Status
    from gdo_opt.solvers.highs import apply_options, build_model, result_from_highs, run_guarded
    from gdo_opt.solvers.pricing import column_major

    fixed = x.astype(np.float64)
    fixed[free] = 0.0
    act = form.A @ fixed
    A_free = sp.csr_matrix(column_major(form)[:, free])
    rows = np.flatnonzero(np.diff(A_free.indptr) > 0)
    others = np.setdiff1d(np.arange(form.A.shape[0]), rows)
    act_o = act[others]
    if ((act_o < form.row_lo[others] - 1e-9) | (act_o > form.row_hi[others] + 1e-9)).any():
        return "infeasible", None  # a violated row has no free column: this neighbourhood cannot fix it
    lo = form.row_lo[rows] - act[rows]
    hi = form.row_hi[rows] - act[rows]
    highs = build_model(form.c[free], A_free[rows], lo, hi, integral=True)
    apply_options(highs, time_limit=time_limit, mip_gap=mip_gap, threads=threads)
    run_guarded(highs, time_limit)
    raw = result_from_highs(highs, columns=free)
    status = Status(raw.status)
    if raw.indices is None or status in (Status.INFEASIBLE, Status.ERROR):
        return status.value, None
    out = x.copy()
    out[free] = False
    out[np.asarray(raw.indices, dtype=np.int64)] = True
    return status.value, out


def repair_by_mip(form, x: np.ndarray, priority: np.ndarray, deadline: float | None, mip_gap: float = 2e-3,
                  threads=None, tries: int = 3, size: int | None = None) -> tuple[np.ndarray, dict]:
    """Fix every violated row of ``x`` with neighbourhood MIPs (≤ ``tries`` growing neighbourhoods,
    within ``deadline``); returns (x, info). The returned x may still violate rows if none worked.
    ``size``: the first neighbourhood's size per side (default: from the violation and K)."""
    info: dict = {"mip_tries": []}
    bad = violated_rows(form, x)
    if bad.size == 0:
        return x, info
    n = x.size
    deficit = int(abs(form.row_lo[0] - x.sum())) if x.sum() < form.row_lo[0] else 0
    # a few thousand, more with the violation and the budget (a covering row short by 15% at K = 20k
    # needed ~24k free columns at 1M; 6k were infeasible)
    if size is None:
        size = 2 * int(bad.size) + 4 * deficit + max(500, int(form.row_hi[0]) // 2)
    size = min(n, size)
    for attempt in range(tries):
        last = attempt == tries - 1 or size >= n
        if last and n <= WHOLE_POOL_N:
            free = np.arange(n)
        else:
            free = neighbourhood(form, x, priority, bad, size)
        left = None if deadline is None else deadline - time.perf_counter()
        if left is not None and left <= 0:
            info["stopped"] = True
            break
        t = time.perf_counter()
        status, out = solve_neighbourhood(form, x, free, left, mip_gap, threads)
        info["mip_tries"].append(dict(free=int(free.size), status=status, seconds=time.perf_counter() - t))
        if out is not None:
            return out, info
        if free.size >= n or math.isinf(size):
            break
        size = min(n, GROWTH * size)
    return x, info


def improve_by_mip(form, x: np.ndarray, priority: np.ndarray, deadline: float | None, size: int,
                   mip_gap: float = 1e-4, threads=None, time_cap: float | None = None) -> tuple[np.ndarray, dict]:
    """One local-search step for a feasible ``x``: the best subset when the ``size`` worst
    selected and ``size`` best unselected items (by ``priority``) may move. x itself is feasible
    there, so the answer is never worse; only its value is kept if HiGHS stops early."""
    free = neighbourhood(form, x, priority, np.zeros(0, dtype=np.int64), size)
    left = None if deadline is None else deadline - time.perf_counter()
    if time_cap is not None:
        left = time_cap if left is None else min(left, time_cap)
    if left is not None and left <= 0:
        return x, {"improve": "no time left"}
    t = time.perf_counter()
    status, out = solve_neighbourhood(form, x, free, left, mip_gap, threads)
    info = {"improve": dict(free=int(free.size), status=status, seconds=time.perf_counter() - t)}
    if out is None or form.c[out].sum() < form.c[x].sum():
        return x, info
    return out, info
