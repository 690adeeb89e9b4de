"""The selection problem: a budgeted 0/1 program with quota, cap, dedup, share and linear rows.

    maximize   Σ_i ρ_i x_i,   x_i ∈ {0,1}
    subject to budget      lo ≤ Σ_i x_i ≤ hi
               groups      lo_g ≤ Σ_{i∈g} x_i ≤ hi_g        (quotas of a labelling)
               caps        Σ_{i∈v} x_i ≤ c_v                  (per-video QA caps)
               exclusive   Σ_{i∈d} x_i ≤ 1                    (dedup groups)
               shares      lo·Σ_B x ≤ Σ_A x ≤ hi·Σ_B x        (A ⊆ B, B = all by default)
               linear      lo_r ≤ a_r·x ≤ hi_r

The problem object knows nothing about solvers. Every family is stored vectorized (integer label
codes + per-group bounds, or sparse rows), so building, checking and pricing are numpy operations
over millions of candidates. ``standard_form()`` turns it into one sparse matrix for the solvers.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from gdo_opt.errors import FrozenProblemError, ParameterError
from gdo_opt.selection.families import (
    Family,
    GroupFamily,
    LinearFamily,
    ShareFamily,
    as_mask,
    bounds_per_group,
    encode_labels,
    fmt_number,
    parse_budget,
    row_bounds,
    table_row,
    with_dict_labels,
)
from gdo_opt.selection.result import Selection, Violation
from gdo_opt.selection.standard_form import StandardForm, build_standard_form
from gdo_opt.solvers.base import relative_gap

# Magnitudes beyond this are rejected: HiGHS treats |a| ≥ 1e15 as an error (large_matrix_value)
# and no 64-bit integer scaling (CP-SAT) could hold them.
MAX_MAGNITUDE = 1e15

__all__ = [
    "GroupFamily", "LinearFamily", "Selection", "SelectionProblem", "ShareFamily", "StandardForm", "Violation",
    "relative_gap",
]

# --------------------------------------------------------------------------- the problem


class SelectionProblem:
    """Pick a subset maximizing the summed score under budget, quota, cap, dedup and share rows.

    >>> p = SelectionProblem([3.0, 2.0, 1.0], budget=2)
    >>> p.add_exclusive(["a", "a", None])
    >>> p.solve(solver="highs").indices.tolist()
    [0, 2]
    """

    def __init__(self, scores, budget) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 1:
            raise ValueError(f"scores must be a 1-D array, got shape {scores.shape}")
        if scores.size == 0:
            raise ValueError("scores is empty: nothing to select from")
        bad = ~np.isfinite(scores)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"scores has {int(bad.sum())} non-finite value(s) (NaN/inf), first at index {first}"
            )
        if np.abs(scores).max() > MAX_MAGNITUDE:
            raise ParameterError("scores", f"has values beyond ±{MAX_MAGNITUDE:g} (no solver holds them exactly)")
        self.scores = scores
        self.n = int(scores.size)
        self.budget_lo, self.budget_hi = parse_budget(budget, self.n)
        self.families: list[Family] = []
        self._standard_form: StandardForm | None = None
        self._frozen = False

    # ----------------------------------------------------------------- building

    def add_group_bounds(self, labels, lo=None, hi=None, name: str = "group") -> GroupFamily:
        """Bound the count selected in every group of ``labels`` (a quota per stratum).

        ``lo`` / ``hi``: a scalar for every group, a dict label -> bound (groups not in the dict are
        unbounded), or None. Labels None / "" / -1 / NaN mean "in no group".
        """
        codes, uniques = encode_labels(labels, self.n, name)
        uniques = with_dict_labels(uniques, lo, hi)
        lo_arr = bounds_per_group(lo, uniques, 0.0, name, "lo")
        hi_arr = bounds_per_group(hi, uniques, math.inf, name, "hi")
        bad = lo_arr > hi_arr
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name}: lo > hi for group {uniques[g]!r} ({fmt_number(lo_arr[g])} > {fmt_number(hi_arr[g])})"
            )
        return self._add_group_family(name, "group", codes, uniques, lo_arr, hi_arr)

    def add_cap(self, labels, at_most, name: str = "cap") -> GroupFamily:
        """At most ``at_most`` selected per label (e.g. QA pairs per video); scalar or dict."""
        codes, uniques = encode_labels(labels, self.n, name)
        uniques = with_dict_labels(uniques, at_most)
        hi_arr = bounds_per_group(at_most, uniques, math.inf, name, "at_most")
        return self._add_group_family(name, "cap", codes, uniques, np.zeros_like(hi_arr), hi_arr)

    def add_exclusive(self, labels, name: str = "exclusive") -> GroupFamily:
        """At most one selected per label (deduplication)."""
        codes, uniques = encode_labels(labels, self.n, name)
        ones = np.ones(uniques.size)
        return self._add_group_family(name, "exclusive", codes, uniques, np.zeros_like(ones), ones)

    def add_share(self, mask, lo=None, hi=None, of=None, name: str = "share") -> ShareFamily:
        """lo·|S ∩ B| ≤ |S ∩ A| ≤ hi·|S ∩ B|, with A = ``mask`` and B = ``of`` (default: everything)."""
        self._check_name(name)
        a_mask = as_mask(mask, self.n, name, "mask")
        b_mask = np.ones(self.n, dtype=bool) if of is None else as_mask(of, self.n, name, "of")
        if (a_mask & ~b_mask).any():
            raise ValueError(f"{name}: mask must be a subset of of (A ⊆ B)")
        for key, value in (("lo", lo), ("hi", hi)):
            if value is not None and not (0.0 <= float(value) <= 1.0):
                raise ValueError(f"{name}: {key} = {value} is not a share in [0, 1]")
        if lo is not None and hi is not None and float(lo) > float(hi):
            raise ValueError(f"{name}: lo > hi ({lo} > {hi})")
        family = ShareFamily(
            name, a_mask, b_mask, None if lo is None else float(lo), None if hi is None else float(hi)
        )
        return self._append(family)

    def add_linear(self, coef, lo=None, hi=None, name: str = "linear") -> LinearFamily:
        """Any rows lo ≤ a·x ≤ hi: ``coef`` is a dense vector/matrix or a scipy.sparse matrix."""
        self._check_name(name)
        matrix = sp.csr_matrix(coef, dtype=np.float64)
        if matrix.shape[1] != self.n:
            if matrix.shape[0] == self.n and matrix.shape[1] == 1:
                matrix = matrix.T.tocsr()
            else:
                raise ValueError(f"{name}: coef has {matrix.shape[1]} columns, expected {self.n}")
        if not np.isfinite(matrix.data).all():
            raise ValueError(f"{name}: coef has non-finite values")
        if matrix.nnz and np.abs(matrix.data).max() > MAX_MAGNITUDE:
            raise ParameterError("coef", f"{name}: has values beyond ±{MAX_MAGNITUDE:g} (no solver holds them)")
        rows = matrix.shape[0]
        lo_arr = row_bounds(lo, rows, -math.inf, name, "lo")
        hi_arr = row_bounds(hi, rows, math.inf, name, "hi")
        if np.all(np.isinf(lo_arr)) and np.all(np.isinf(hi_arr)):
            raise ValueError(f"{name}: give lo, hi or both")
        bad = lo_arr > hi_arr
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}: lo > hi in row {r} ({fmt_number(lo_arr[r])} > {fmt_number(hi_arr[r])})")
        matrix.sum_duplicates()
        return self._append(LinearFamily(name, matrix, lo_arr, hi_arr))

    def _add_group_family(self, name, kind, codes, uniques, lo_arr, hi_arr) -> GroupFamily:
        self._check_name(name)
        if (lo_arr < 0).any() or (hi_arr < 0).any():
            which = "at_most" if kind == "cap" else "bound"
            g = int(np.flatnonzero((lo_arr < 0) | (hi_arr < 0))[0])
            raise ValueError(f"{name}: negative {which} for group {uniques[g]!r}")
        sizes = np.bincount(codes[codes >= 0], minlength=uniques.size).astype(np.int64)
        # Counts are integers: tighten fractional bounds once here so every solver sees the same.
        lo_arr = np.ceil(lo_arr - 1e-9) + 0.0  # + 0.0 turns -0.0 into 0.0
        hi_arr = np.where(np.isinf(hi_arr), hi_arr, np.floor(hi_arr + 1e-9))
        family = GroupFamily(name, kind, codes, uniques, lo_arr, hi_arr, sizes)
        return self._append(family)

    def _append(self, family):
        self.families.append(family)
        self._standard_form = None
        return family

    def _check_name(self, name: str) -> None:
        if self._frozen:
            raise FrozenProblemError(f"cannot add {name!r}: the problem was solved and is frozen; "
                                     "add constraints to problem.copy()")
        if not isinstance(name, str) or not name:
            raise ValueError("constraint name must be a non-empty string")
        if name == "budget" or any(f.name == name for f in self.families):
            raise ValueError(f"constraint name {name!r} is already used")

    def family(self, name: str):
        for fam in self.families:
            if fam.name == name:
                return fam
        raise KeyError(name)

    # ----------------------------------------------------------------- standard form

    def standard_form(self) -> StandardForm:
        """All rows as one CSR matrix (row 0 = budget), built by the families; cached."""
        if self._standard_form is None:
            self._standard_form = build_standard_form(self)
        return self._standard_form

    def row_name(self, row: int) -> str:
        """Human name of a standard-form row, e.g. ``per_video['v17']`` or ``video_share.lo``."""
        form = self.standard_form()
        fam_index, group = int(form.row_family[row]), int(form.row_group[row])
        return "budget" if fam_index < 0 else self.families[fam_index].row_name(group)

    # ----------------------------------------------------------------- checking

    def valid_indices(self, indices) -> np.ndarray:
        """``indices`` as int64, or ``ParameterError`` for fractions, NaN, booleans or out-of-range."""
        arr = np.asarray(indices).ravel()
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.dtype.kind == "b":
            raise ParameterError("indices", "must be integers, not booleans (use np.flatnonzero(mask))")
        if arr.dtype.kind not in "iu":
            try:
                values = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ParameterError("indices", f"must be integers (got dtype {arr.dtype})") from None
            bad = ~np.isfinite(values) | (values != np.round(values))
            if bad.any():
                raise ParameterError("indices", "must be integers", arr[np.flatnonzero(bad)[0]])
            arr = values
        idx = arr.astype(np.int64)
        if idx.min() < 0 or idx.max() >= self.n:
            raise ParameterError("indices", f"selection has indices outside [0, {self.n})")
        return idx

    def indicator(self, indices) -> np.ndarray:
        """0/1 vector of a selection; rejects fractional, out-of-range or repeated indices."""
        idx = self.valid_indices(indices)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise ValueError(f"selection has indices outside [0, {self.n})")
        x = np.zeros(self.n, dtype=np.float64)
        x[idx] = 1.0
        if int(x.sum()) != idx.size:
            raise ValueError("selection has repeated indices")
        return x

    def objective(self, indices) -> float:
        idx = self.valid_indices(indices)
        return float(self.scores[idx].sum()) if idx.size else 0.0

    def check(self, indices, tol: float = 1e-6) -> list[Violation]:
        """Every violated constraint of a selection, recomputed by the families (not the solvers)."""
        x = self.indicator(indices)
        out: list[Violation] = []
        total = float(x.sum())
        if total < self.budget_lo or total > self.budget_hi:
            out.append(Violation("budget", None, total, self.budget_lo, self.budget_hi))
        for fam in self.families:
            out.extend(fam.violations(x, tol))
        return out

    def constraint_table(self, indices, detail_limit: int = 50) -> list[dict]:
        """Per-constraint rows (name, kind, group, lo, hi, achieved, binding, violated) for reports.

        Families with more than ``detail_limit`` groups get one summary row (group ``"*"``) with the
        counts of binding and violated groups; smaller ones get a row per group as well.
        """
        x = self.indicator(indices)
        rows = [table_row("budget", "budget", None, self.budget_lo, self.budget_hi, float(x.sum()))]
        for fam in self.families:
            rows.extend(fam.table(x, detail_limit))
        return rows

    # ----------------------------------------------------------------- solving

    def solve(self, solver="auto", **options) -> Selection:
        """Solve with a registered backend (by name) or a backend instance, then check the answer.

        Options: ``time_limit``, ``mip_gap`` (1e-4), ``seed``, ``threads``, ``verbose`` and the
        backend's own (unknown keys raise ``SolverOptionError``). The problem is frozen from now
        on (``copy()`` gives an editable one). See ``gdo_opt.selection.solve`` for the status rules.
        """
        from gdo_opt.selection.solve import solve

        return solve(self, solver, **options)

    def freeze(self) -> None:
        """No more constraints after a solve: results must stay reproducible from the problem."""
        self._frozen = True

    @property
    def frozen(self) -> bool:
        return self._frozen

    def copy(self) -> SelectionProblem:
        """An editable copy with the same scores, budget and families (families are shared, read-only)."""
        other = SelectionProblem.__new__(SelectionProblem)
        other.scores, other.n = self.scores, self.n
        other.budget_lo, other.budget_hi = self.budget_lo, self.budget_hi
        other.families = list(self.families)
        other._standard_form = self._standard_form
        other._frozen = False
        return other

    def to_cvxpy(self):
        """``(x, objective, constraints)`` as cvxpy objects, so users can add rows and pick a solver."""
        import cvxpy as cp

        form = self.standard_form()
        x = cp.Variable(self.n, boolean=True, name="x")
        objective = cp.Maximize(form.c @ x)
        constraints = []
        lo_rows = np.flatnonzero(np.isfinite(form.row_lo))
        hi_rows = np.flatnonzero(np.isfinite(form.row_hi))
        if lo_rows.size:
            constraints.append(form.A[lo_rows] @ x >= form.row_lo[lo_rows])
        if hi_rows.size:
            constraints.append(form.A[hi_rows] @ x <= form.row_hi[hi_rows])
        return x, objective, constraints

    def summary(self) -> str:
        form = self.standard_form()
        names = ", ".join(f"{f.name}" for f in self.families) or "none"
        return (
            f"SelectionProblem(n={self.n}, budget=[{self.budget_lo}, {self.budget_hi}], "
            f"rows={form.A.shape[0]}, nnz={form.A.nnz}, families: {names})"
        )

    __repr__ = summary
