"""Bounds on the count selected per group of a labelling: quotas, per-video caps, dedup groups."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gdo_opt.selection.families.base import CountTerm, Family, RowBlock, table_row
from gdo_opt.selection.families.parsing import group_rows
from gdo_opt.selection.result import Violation, fmt_number


@dataclass(eq=False)
class GroupFamily(Family):
    """lo_g ≤ Σ_{i∈g} x_i ≤ hi_g for every group g (codes: int64 per candidate, −1 = no group)."""

    name: str
    kind: str  # "group" | "cap" | "exclusive"
    codes: np.ndarray  # int64 (N,), -1 = not in any group
    labels: np.ndarray  # object (G,), the label of each code
    lo: np.ndarray  # float64 (G,)
    hi: np.ndarray  # float64 (G,), inf = no upper bound
    sizes: np.ndarray  # int64 (G,), members per group

    counted = True

    def counts(self, x: np.ndarray) -> np.ndarray:
        member = self.codes >= 0
        return np.bincount(self.codes[member], weights=x[member], minlength=self.labels.size)

    def active_groups(self) -> np.ndarray:
        """Groups whose bounds can bind: lo > 0 or hi < size (the rest need no row)."""
        return np.flatnonzero((self.lo > 0) | (self.hi < self.sizes))

    def rows(self, n: int) -> RowBlock:
        groups = self.active_groups()
        block = group_rows(self.codes, groups, self.labels.size, n)
        hi = np.minimum(self.hi[groups], self.sizes[groups]).astype(np.float64)
        return RowBlock(block, self.lo[groups].astype(np.float64), hi, groups)

    def row_name(self, row_id: int) -> str:
        return f"{self.name}[{self.labels[row_id]!r}]"

    def violations(self, x, tol) -> list:
        counts = self.counts(x)
        bad = np.flatnonzero((counts < self.lo - tol) | (counts > self.hi + tol))
        return [Violation(self.name, self.labels[g], float(counts[g]), float(self.lo[g]), float(self.hi[g]))
                for g in bad]

    def table(self, x, detail_limit) -> list[dict]:
        counts = self.counts(x)
        groups = np.flatnonzero((self.lo > 0) | (self.hi < self.sizes))
        lo, hi, got = self.lo[groups], np.minimum(self.hi[groups], self.sizes[groups]), counts[groups]
        binding = (np.abs(got - lo) < 1e-9) & (lo > 0) | (np.abs(got - self.hi[groups]) < 1e-9)
        violated = (got < lo - 1e-6) | (got > hi + 1e-6)
        rows = [{
            "name": self.name, "kind": self.kind, "group": "*",
            "groups": int(self.labels.size), "bounded_groups": int(groups.size),
            "lo": float(lo.min()) if groups.size else 0.0,
            # the bound as set (a cap no group reaches is still the cap)
            "hi": float(self.hi[groups].max()) if groups.size else _finite_max(self.hi),
            "achieved": float(got.sum()) if groups.size else 0.0,
            "binding": int(binding.sum()), "violated": int(violated.sum()),
            "largest_group": float(counts.max()) if counts.size else 0.0,
        }]
        if self.labels.size <= detail_limit:
            # the summary's rule per group: a group whose bounds cannot bind (lo 0, hi >= its size)
            # is not binding even when every one of its rows was chosen
            bounded = (self.lo > 0) | (self.hi < self.sizes)
            at_bound = bounded & (((np.abs(counts - self.lo) < 1e-9) & (self.lo > 0))
                                  | (np.abs(counts - self.hi) < 1e-9))
            for g in range(self.labels.size):
                row = table_row(self.name, self.kind, self.labels[g], self.lo[g], self.hi[g], counts[g])
                row["binding"] = bool(at_bound[g])
                rows.append(row)
        return rows

    def greedy_terms(self, n, k_lo, k_hi):
        hi = np.minimum(self.hi, self.sizes).astype(np.float64)
        term = CountTerm(self.name, self.codes, self.lo.astype(np.float64), hi, reserve=bool((self.lo > 0).any()))
        return [term], []

    def core_members(self, ctx) -> np.ndarray | None:
        """The top ⌈floor_factor·lo⌉ + floor_extra members of every floored group."""
        if not (self.lo > 0).any():
            return None
        need = np.where(self.lo > 0, np.ceil(ctx.floor_factor * self.lo) + ctx.floor_extra, 0)
        idx = np.flatnonzero(self.codes >= 0)
        within = rank_within_groups(self.codes[idx], ctx.rank[idx])
        return idx[within < need[self.codes[idx]]]

    def upper_part(self, cols: np.ndarray):
        if not np.isfinite(self.hi).any():
            return None
        codes = self.codes[cols]
        return GroupFamily(self.name, self.kind, codes, self.labels, np.zeros_like(self.lo), self.hi,
                           np.bincount(codes[codes >= 0], minlength=self.labels.size))

    def counting_reasons(self, problem, uppers, max_selectable) -> list[str]:
        reasons = []
        lo_k, hi_k = problem.budget_lo, problem.budget_hi
        short = np.flatnonzero(self.lo > self.sizes)
        if short.size:
            g = int(short[0])
            more = f" (and {short.size - 1} more groups)" if short.size > 1 else ""
            reasons.append(f"{self.name}[{self.labels[g]!r}] needs ≥ {fmt_number(self.lo[g])} but only "
                           f"{int(self.sizes[g])} candidates have that label{more}")
        floor_total = float(self.lo.sum())
        if floor_total > hi_k:
            reasons.append(f"{self.name} floors need ≥ {fmt_number(floor_total)} in total but the budget "
                           f"allows at most {hi_k}")
        outside = int((self.codes < 0).sum())
        most = float(np.minimum(self.hi, self.sizes).sum()) + outside
        if most < lo_k:
            reasons.append(f"budget needs ≥ {lo_k} but {self.name} lets at most {fmt_number(most)} be selected")
        return reasons


def _finite_max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.inf


def rank_within_groups(codes: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """0-based position of each item inside its group when ordered by ``rank``."""
    span = int(rank.max()) + 1 if rank.size else 1
    if rank.size and rank.dtype.kind in "iu" and rank.min() >= 0 and int(codes.max()) < np.iinfo(np.int64).max // (2 * span):
        # one key, codes·span + rank: the same order as the lexsort, ~2× faster (3.2 s at 4.5M)
        order = np.argsort(codes.astype(np.int64) * span + rank, kind="stable")
    else:
        order = np.lexsort((rank, codes))
    sc = codes[order]
    start = np.r_[True, sc[1:] != sc[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(sc.size), 0))
    out = np.empty(sc.size, dtype=np.int64)
    out[order] = np.arange(sc.size) - first
    return out
