"""Shares: lo·Σ_B x ≤ Σ_A x ≤ hi·Σ_B x (A ⊆ B; B = the whole pool by default)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gdo_opt.selection.families.base import CountTerm, Family, RowBlock, RowTerm, table_row
from gdo_opt.selection.result import Violation, fmt_number


@dataclass(eq=False)
class ShareFamily(Family):
    """Stored as two masks; its rows are a − lo·b ≥ 0 and a − hi·b ≤ 0."""

    name: str
    a_mask: np.ndarray  # bool (N,)
    b_mask: np.ndarray  # bool (N,)
    lo: float | None
    hi: float | None

    kind = "share"

    def _sides(self) -> list[tuple[str, float]]:
        sides = []
        if self.lo is not None and self.lo > 0:
            sides.append(("lo", self.lo))
        if self.hi is not None and self.hi < 1:
            sides.append(("hi", self.hi))
        return sides

    def rows(self, n: int) -> RowBlock:
        cols = np.flatnonzero(self.b_mask)
        a = self.a_mask[cols].astype(np.float64)
        data, indices, lo, hi = [], [], [], []
        for side, share in self._sides():
            values = a - share
            keep = values != 0
            data.append(values[keep])
            indices.append(cols[keep])
            lo.append(0.0 if side == "lo" else -math.inf)
            hi.append(math.inf if side == "lo" else 0.0)
        indptr = np.zeros(len(data) + 1, dtype=np.int64)
        np.cumsum([d.size for d in data], out=indptr[1:])
        matrix = sp.csr_matrix(
            (np.concatenate(data) if data else np.zeros(0), np.concatenate(indices) if indices else np.zeros(0, int),
             indptr), shape=(len(data), n))
        return RowBlock(matrix, np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64),
                        np.arange(len(data)))

    def row_name(self, row_id: int) -> str:
        return f"{self.name}.{self._sides()[row_id][0]}"

    def _counts(self, x) -> tuple[float, float]:
        return float(x[self.a_mask].sum()), float(x[self.b_mask].sum())

    def violations(self, x, tol) -> list:
        a, b = self._counts(x)
        lo = -math.inf if self.lo is None else self.lo * b
        hi = math.inf if self.hi is None else self.hi * b
        return [Violation(self.name, None, a, lo, hi)] if (a < lo - tol or a > hi + tol) else []

    def table(self, x, detail_limit) -> list[dict]:
        a, b = self._counts(x)
        row = table_row(self.name, "share", None, 0.0 if self.lo is None else self.lo,
                        1.0 if self.hi is None else self.hi, a / b if b else 0.0)
        row.update(count=a, of=b)
        # tight at whole rows: one more (or one fewer) row of the mask would break a bound
        lo_s, hi_s = self.lo, self.hi
        row["binding"] = bool(b > 0 and ((hi_s is not None and hi_s < 1 and (a + 1) / b > hi_s + 1e-12)
                                         or (lo_s is not None and lo_s > 0 and (a - 1) / b < lo_s - 1e-12)))
        return [row]

    def greedy_terms(self, n, k_lo, k_hi):
        """A whole-pool share is a count ⌈lo·K⌉ ≤ |S ∩ A| ≤ ⌊hi·K⌋ (with a fixed K exactly, and
        then also a mirrored count on the complement); every share is also kept as its rows."""
        counts: list[CountTerm] = []
        if self.b_mask.all():
            k = k_hi
            lo = 0.0 if self.lo is None else math.ceil(self.lo * k - 1e-9)
            hi = float(k) if self.hi is None else math.floor(self.hi * k + 1e-9)
            if k_lo == k_hi:
                codes = np.where(self.a_mask, 0, 1).astype(np.int64)
                return [CountTerm(self.name, codes, np.array([lo, k - hi]), np.array([hi, k - lo]),
                                  reserve=True)], []
            codes = np.where(self.a_mask, 0, -1).astype(np.int64)
            counts.append(CountTerm(self.name, codes, np.array([lo]), np.array([hi]), reserve=lo > 0))
        a = self.a_mask.astype(np.float64)
        b = self.b_mask.astype(np.float64)
        rows = [
            RowTerm(f"{self.name}.{side}", (lambda s=share: a - s * b),
                    0.0 if side == "lo" else -math.inf, math.inf if side == "lo" else 0.0)
            for side, share in self._sides()
        ]
        return counts, rows

    def core_members(self, ctx) -> np.ndarray | None:
        """The top ⌈floor_factor·lo·K⌉ + floor_extra members of a floored mask."""
        if self.lo is None or self.lo <= 0:
            return None
        want = int(math.ceil(ctx.floor_factor * self.lo * ctx.budget_hi)) + ctx.floor_extra
        return ctx.order[self.a_mask[ctx.order]][:want]

    def counting_reasons(self, problem, uppers, max_selectable) -> list[str]:
        if not self.b_mask.all():
            return []
        reasons = []
        lo_k, hi_k = problem.budget_lo, problem.budget_hi
        names = " and ".join(f.name for f in uppers) or "the budget"
        if self.lo is not None and self.lo > 0:
            need = math.ceil(self.lo * lo_k - 1e-9)
            got = max_selectable(self.a_mask, hi_k)
            if got < need:
                reasons.append(f"share {self.name} needs ≥ {need} of {lo_k} but only {fmt_number(got)} candidates "
                               f"in its mask survive {names}")
        if self.hi is not None and self.hi < 1:
            need = math.ceil((1 - self.hi) * lo_k - 1e-9)
            got = max_selectable(~self.a_mask, hi_k)
            if got < need:
                reasons.append(f"share {self.name} allows ≤ {fmt_number(self.hi * lo_k)} of {lo_k} from its mask, so "
                               f"≥ {need} must come from outside it, but only {fmt_number(got)} survive {names}")
        return reasons
