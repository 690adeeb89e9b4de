"""A valid upper bound in O(nnz) per step: Lagrangian relaxation with the budget and one quota
family kept exact, every other row priced by multipliers (subgradient, Polyak steps).

For multipliers y with the right signs (y_r ≥ 0 on an upper bound, ≤ 0 on a lower one),
weak duality gives, for every x feasible for the whole problem,

    cᵀx ≤ max { (c − Aᵀy)ᵀx : x in X } + Σ_r (y_r > 0 ? y_r·hi_r : y_r·lo_r),

where X keeps the budget and the quota family with the most floors (counts lo_g ≤ Σ_g x ≤ hi_g
per group). The inner maximum over X is exact by a greedy: the top lo_g of every group first,
then the best of the rest (ranks lo_g … hi_g − 1 inside their group, or in no group) while they
help or the budget floor needs them — a separable concave allocation, so the greedy is optimal.
The bound is therefore valid for any y; the subgradient only makes it tighter. It needs no LP
solver, so its cost is known in advance (why the greedy uses it: the LP bound at 1M candidates
can take minutes). The reduced costs d = c − Aᵀy also give the greedy its LP-like order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .fill import MAX_WEIGHTED_ROWS


@dataclass
class _Groups:
    """Dualized count rows of one family: lo_g ≤ count_g ≤ hi_g, multipliers y per group."""

    codes: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    y: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.y = np.zeros(self.lo.size)
        self.member = self.codes >= 0
        self.ext = np.where(self.member, self.codes, self.lo.size)  # −1 → a trailing zero multiplier
        self.hi0 = np.where(np.isfinite(self.hi), self.hi, 0.0)
        self.has_hi = np.isfinite(self.hi)
        self.has_lo = self.lo > 0


@dataclass
class LagrangeResult:
    bound: float  # valid upper bound (−inf: the kept rows alone are infeasible)
    reduced: np.ndarray  # c − Aᵀy at the best y (the greedy's order)
    iterations: int
    seconds: float
    inner: np.ndarray  # indices of the inner maximizer at the best y


class Lagrangian:
    """The relaxation of one problem; ``run`` improves the multipliers, ``best`` keeps the bound."""

    def __init__(self, problem, form=None) -> None:
        self.problem = problem
        self.c = problem.scores
        self.n = problem.n
        self.k_lo, self.k_hi = problem.budget_lo, problem.budget_hi
        counted = [f for f in problem.families if f.counted]
        floored = [f for f in counted if f.kind == "group" and (f.lo > 0).any()]
        self.inner = max(floored, key=lambda f: int((f.lo > 0).sum()), default=None)
        if self.inner is not None:
            f = self.inner
            self.in_codes = f.codes
            self.in_lo = f.lo.astype(np.float64)
            self.in_hi = np.minimum(f.hi, f.sizes).astype(np.float64)
        self.groups = []
        for f in counted:
            if f is self.inner:
                continue
            g = _Groups(f.codes, f.lo.astype(np.float64), np.minimum(f.hi, f.sizes).astype(np.float64))
            if (g.has_lo | (g.hi < f.sizes)).any():
                self.groups.append(g)
        # generic rows are priced densely, at most MAX_WEIGHTED_ROWS of them (the fill's limit); a row
        # left out has multiplier 0, which keeps the bound valid (a relaxation of fewer rows). They
        # are read off the standard form (rebuilding a share's rows took 0.8 s at 4.5M candidates).
        form = form if form is not None else problem.standard_form()
        A = form.A
        picked = []
        for fi, f in enumerate(problem.families):
            if not f.counted:
                picked += [(fi, int(r)) for r in np.flatnonzero(form.row_family == fi)]
        picked = picked[:MAX_WEIGHTED_ROWS]
        # filled in place: stacking a list of dense rows cost 1.5 s at 4.5M candidates
        self.W = np.zeros((len(picked), self.n))
        lo, hi, self.w_key = [], [], []
        for i, (fi, r) in enumerate(picked):
            seg = slice(A.indptr[r], A.indptr[r + 1])
            self.W[i] = np.bincount(A.indices[seg], weights=A.data[seg], minlength=self.n)
            scale = float(np.abs(self.W[i]).max()) if self.n else 1.0
            scale = scale or 1.0  # rows in comparable units: better steps
            self.W[i] /= scale
            lo.append(form.row_lo[r] / scale)
            hi.append(form.row_hi[r] / scale)
            self.w_key.append((fi, int(form.row_group[r])))
        self.w_lo, self.w_hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
        self.w_y = np.zeros(len(picked))
        self.best_bound = math.inf
        self.best_state = None
        self.iterations = 0
        self.seconds = 0.0
        self.scale = 1.0  # Polyak step factor, halved when the bound stalls
        self.stall = 0

    # ----------------------------------------------------------------- evaluation

    def reduced(self) -> np.ndarray:
        d = self.c.copy()
        for g in self.groups:
            d -= np.append(g.y, 0.0)[g.ext]
        if self.w_y.size:
            d -= self.w_y @ self.W
        return d

    def constant(self) -> float:
        total = 0.0
        for g in self.groups:
            total += float(np.where(g.y > 0, g.y * g.hi0, g.y * g.lo).sum())
        y = self.w_y
        total += float(np.where(y > 0, y * np.where(np.isfinite(self.w_hi), self.w_hi, 0.0),
                                y * np.where(np.isfinite(self.w_lo), self.w_lo, 0.0)).sum())
        return total

    def evaluate(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(L(y), inner maximizer indices, reduced costs) at the current multipliers."""
        d = self.reduced()
        idx = self.inner_max(d)
        if idx is None:
            return -math.inf, np.zeros(0, dtype=np.int64), d
        return float(d[idx].sum()) + self.constant(), idx, d

    def inner_max(self, d: np.ndarray) -> np.ndarray | None:
        """argmax of dᵀx over the kept rows (budget + inner quota family); None if infeasible.
        Tried on the top of d first (a few budgets' worth, plus whole groups short of floors),
        kept only when provably equal to the full answer, else recomputed on everything."""
        n = self.n
        take = min(n, 3 * self.k_hi + 1000 + (int(self.in_lo.sum()) if self.inner is not None else 0))
        if take < n:
            tau = float(np.partition(d, n - take)[n - take])
            part = d >= tau
            if self.inner is not None:
                valid = self.in_codes >= 0
                cnt = np.bincount(self.in_codes[part & valid], minlength=self.in_lo.size)
                short = cnt < self.in_lo
                if short.any():
                    part |= valid & short[np.where(valid, self.in_codes, 0)]
            cand = np.flatnonzero(part)
            out = self._inner_on(d, cand)
            if out is not None:
                chosen, threshold, complete = out
                # exact when nothing outside could enter: every optional pick beats all outside items
                # (outside d < tau), and picks that stopped at d ≤ 0 left no positive d outside
                if threshold >= tau and (complete or tau <= 0):
                    return chosen
        out = self._inner_on(d, np.arange(n))
        return None if out is None else out[0]

    def _inner_on(self, d, cand):
        """Inner greedy on ``cand``: (chosen, smallest optional d taken, stopped by the budget)."""
        order = cand[np.argsort(-d[cand], kind="stable")]
        if self.inner is not None:
            codes = self.in_codes[order]
            valid = codes >= 0
            g = np.where(valid, codes, 0)
            srt = np.argsort(np.where(valid, codes, -1), kind="stable")
            sc = np.where(valid, codes, -1)[srt]
            start = np.r_[True, sc[1:] != sc[:-1]]
            first = np.maximum.accumulate(np.where(start, np.arange(sc.size), 0))
            rank = np.empty(order.size, dtype=np.int64)
            rank[srt] = np.arange(sc.size) - first
            mandatory = valid & (rank < self.in_lo[g])
            cnt = np.bincount(codes[mandatory], minlength=self.in_lo.size)
            if (cnt < self.in_lo).any():
                return None
            optional = ~valid | (~mandatory & (rank < self.in_hi[g]))
            n_mand = int(mandatory.sum())
        else:
            mandatory = np.zeros(order.size, dtype=bool)
            optional = np.ones(order.size, dtype=bool)
            n_mand = 0
        if n_mand > self.k_hi:
            return None
        opt = order[optional]
        need = max(0, self.k_lo - n_mand)
        room = self.k_hi - n_mand
        positive = int(np.searchsorted(-d[opt], 0.0, side="left"))  # d sorted descending: # of d > 0
        count = min(room, max(need, positive))
        if count > opt.size or (need > opt.size):
            return None if cand.size == self.n else (order[:0], -math.inf, False)
        chosen = np.concatenate([order[mandatory], opt[:count]])
        threshold = float(d[opt[count - 1]]) if count else math.inf
        return chosen, threshold, count == room or count == need

    # ----------------------------------------------------------------- multipliers

    def fit_rows(self, sweeps: int = 2, steps: int = 16, deadline: float | None = None,
                 sample: int = 200_000) -> None:
        """Multipliers of the generic rows (knapsack, covering, shares) by bisection, one row at a
        time: the value where the top K by reduced cost stops violating the row. Cheap (one
        ``argpartition`` per step) and it puts each row's price on the right scale before the
        subgradient: a token budget that binds then shapes the greedy's order from the start."""
        if not self.w_y.size:
            return
        span = float(self.c.max() - self.c.min()) + 1.0
        # prices are per unit of row activity: a regular subsample of the pool (K scaled) finds them
        pick = np.arange(0, self.n, max(1, self.n // sample)) if self.n > sample else np.arange(self.n)
        factor = self.n / pick.size
        k = max(1, min(pick.size, int(round(self.k_hi / factor))))
        W = self.W[:, pick] * factor
        base = self.reduced()[pick] + self.w_y @ self.W[:, pick]  # reduced costs without the generic rows
        for _ in range(sweeps):
            for r in range(self.w_y.size):
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                others = base - (self.w_y @ W - self.w_y[r] * W[r]) / factor
                w = W[r]
                may_pos, may_neg = np.isfinite(self.w_hi[r]), np.isfinite(self.w_lo[r])

                def act_at(y, others=others, w=w):
                    d = others - (y / factor) * w
                    top = np.argpartition(-d, k - 1)[:k] if k < d.size else np.arange(d.size)
                    return float(w[top].sum())

                a0 = act_at(0.0)
                if may_pos and a0 > self.w_hi[r]:
                    lo_y, hi_y, want_up = 0.0, 2.0 * span, True
                elif may_neg and a0 < self.w_lo[r]:
                    lo_y, hi_y, want_up = -2.0 * span, 0.0, False
                else:
                    self.w_y[r] = 0.0
                    continue
                for _ in range(steps):
                    mid = 0.5 * (lo_y + hi_y)
                    a = act_at(mid)
                    bad = a > self.w_hi[r] if want_up else a < self.w_lo[r]
                    if want_up:
                        lo_y, hi_y = (mid, hi_y) if bad else (lo_y, mid)
                    else:
                        lo_y, hi_y = (lo_y, mid) if bad else (mid, hi_y)
                self.w_y[r] = hi_y if want_up else lo_y

    def run(self, iterations: int, target: float | None = None, deadline: float | None = None) -> None:
        """Subgradient steps t = scale·(L − target)/‖s‖² (Polyak); without a target, 5% below L."""
        start = time.perf_counter()
        for _ in range(iterations):
            if deadline is not None and time.perf_counter() >= deadline:
                break
            value, idx, d = self.evaluate()
            self.iterations += 1
            if value == -math.inf:
                self.best_bound = -math.inf
                break
            if value < self.best_bound - 1e-12 * max(1.0, abs(value)):
                self.best_bound = value
                self.best_state = self._state()
                self.best_d, self.best_idx = d, idx
                self.stall = 0
            else:
                self.stall += 1
                if self.stall >= 4:
                    self.scale, self.stall = self.scale / 2, 0
            steps, norm = self._subgradient(idx)
            if norm <= 0:
                break  # the inner maximizer satisfies every priced row: L(y) is the LP optimum
            goal = target if target is not None and target < value else value - 0.05 * max(1.0, abs(value))
            t = self.scale * (value - goal) / norm
            for g, s in zip(self.groups, steps[:-1]):
                g.y = _signed(g.y - t * s, g.has_hi, g.has_lo)
            if self.w_y.size:
                self.w_y = _signed(self.w_y - t * steps[-1], np.isfinite(self.w_hi), np.isfinite(self.w_lo))
            if self.scale < 1e-4:
                break
        self.seconds += time.perf_counter() - start

    def _subgradient(self, idx):
        """∂L/∂y per row at the inner maximizer, with the side chosen by violation at y = 0."""
        steps, norm = [], 0.0
        for g in self.groups:
            codes = g.codes[idx]
            cnt = np.bincount(codes[codes >= 0], minlength=g.lo.size).astype(np.float64)
            s = _side(g.y, cnt, g.lo, g.hi)
            steps.append(s)
            norm += float(s @ s)
        if self.w_y.size:
            act = self.W.T[idx].sum(axis=0)
            s = _side(self.w_y, act, self.w_lo, self.w_hi)
            norm += float(s @ s)
            steps.append(s)
        else:
            steps.append(np.zeros(0))
        return steps, norm

    def _state(self):
        return [g.y.copy() for g in self.groups], self.w_y.copy()

    def result(self) -> LagrangeResult:
        if self.best_state is None:
            value, idx, d = self.evaluate()
            self.best_bound, self.best_d, self.best_idx = value, d, idx
        return LagrangeResult(self.best_bound, self.best_d, self.iterations, self.seconds, self.best_idx)


def _side(y, act, lo, hi) -> np.ndarray:
    """Subgradient of L in y: (hi or lo) − act; at y = 0 only a violated side pushes."""
    hi0 = np.where(np.isfinite(hi), hi, act)
    lo0 = np.where(np.isfinite(lo), lo, act)
    return np.where(y > 0, hi0 - act, np.where(y < 0, lo0 - act,
                    np.where(act > hi0, hi0 - act, np.where(act < lo0, lo0 - act, 0.0))))


def _signed(y, may_pos, may_neg) -> np.ndarray:
    """Multipliers with valid signs: ≥ 0 only on rows with an upper bound, ≤ 0 with a lower."""
    y = np.where(may_pos, y, np.minimum(y, 0.0))
    return np.where(may_neg, y, np.maximum(y, 0.0))
