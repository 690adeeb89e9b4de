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
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from gdo_opt.selection.families import (
    GroupFamily,
    LinearFamily,
    ShareFamily,
    as_mask,
    bounds_per_group,
    encode_labels,
    fmt_number,
    group_rows,
    parse_budget,
    row_bounds,
    with_dict_labels,
)

STATUSES = ("optimal", "feasible", "infeasible", "error")


@dataclass(frozen=True)
class Violation:
    """One unmet constraint: ``value`` should lie in ``[lo, hi]``."""

    name: str
    group: Any
    value: float
    lo: float
    hi: float

    def __str__(self) -> str:
        where = self.name if self.group is None else f"{self.name}[{self.group!r}]"
        return f"{where} = {fmt_number(self.value)} not in [{fmt_number(self.lo)}, {fmt_number(self.hi)}]"


@dataclass
class Selection:
    """A solver's answer with its certificate: ``bound`` is a valid upper bound on the optimum."""

    indices: np.ndarray
    objective: float
    bound: float
    gap: float
    status: str
    solver: str
    seconds: float
    message: str = ""
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __repr__(self) -> str:
        return (
            f"Selection(n={self.indices.size}, status={self.status!r}, solver={self.solver!r}, "
            f"objective={self.objective:.6g}, bound={self.bound:.6g}, gap={self.gap:.3g}, "
            f"seconds={self.seconds:.3f})"
        )


def relative_gap(objective: float, bound: float) -> float:
    """(bound − objective) / max(1, |bound|), the convention HiGHS uses; inf without a bound."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.inf
    return max(0.0, bound - objective) / max(1.0, abs(bound))


@dataclass
class StandardForm:
    """max cᵀx  s.t.  row_lo ≤ A x ≤ row_hi,  x ∈ {0,1}ᴺ — what every solver consumes.

    Row 0 is the budget. ``row_family[r]`` is the index into ``problem.families`` (-1 = budget) and
    ``row_group[r]`` the group index inside that family, so solvers can name rows in messages.
    """

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    row_family: np.ndarray
    row_group: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape


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
        self.scores = scores
        self.n = int(scores.size)
        self.budget_lo, self.budget_hi = parse_budget(budget, self.n)
        self.families: list[GroupFamily | ShareFamily | LinearFamily] = []
        self._standard_form: StandardForm | None = None

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
        """All rows as one CSR matrix (row 0 = budget). Redundant group rows are dropped."""
        if self._standard_form is not None:
            return self._standard_form
        n = self.n
        blocks = [sp.csr_matrix((np.ones(n), np.arange(n), np.array([0, n])), shape=(1, n))]
        row_lo = [np.array([float(self.budget_lo)])]
        row_hi = [np.array([float(self.budget_hi)])]
        row_family = [np.array([-1])]
        row_group = [np.array([0])]
        for index, fam in enumerate(self.families):
            if isinstance(fam, GroupFamily):
                groups = fam.active_groups()
                block = group_rows(fam.codes, groups, fam.labels.size, n)
                lo = fam.lo[groups]
                hi = np.minimum(fam.hi[groups], fam.sizes[groups]).astype(np.float64)
                gid = groups
            elif isinstance(fam, ShareFamily):
                rows, lo, hi = [], [], []
                a = fam.a_mask.astype(np.float64)
                b = fam.b_mask.astype(np.float64)
                if fam.lo is not None and fam.lo > 0:
                    rows.append(a - fam.lo * b)
                    lo.append(0.0)
                    hi.append(math.inf)
                if fam.hi is not None and fam.hi < 1:
                    rows.append(a - fam.hi * b)
                    lo.append(-math.inf)
                    hi.append(0.0)
                block = sp.csr_matrix(np.vstack(rows)) if rows else sp.csr_matrix((0, n))
                block.eliminate_zeros()
                lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
                gid = np.arange(len(rows))
            else:
                block, lo, hi = fam.matrix, fam.lo, fam.hi
                gid = np.arange(block.shape[0])
            blocks.append(block)
            row_lo.append(np.asarray(lo, dtype=np.float64))
            row_hi.append(np.asarray(hi, dtype=np.float64))
            row_family.append(np.full(block.shape[0], index))
            row_group.append(np.asarray(gid, dtype=np.int64))
        A = sp.vstack(blocks, format="csr")
        A.sort_indices()
        self._standard_form = StandardForm(
            c=self.scores,
            A=A,
            row_lo=np.concatenate(row_lo),
            row_hi=np.concatenate(row_hi),
            row_family=np.concatenate(row_family).astype(np.int64),
            row_group=np.concatenate(row_group).astype(np.int64),
        )
        return self._standard_form

    def row_name(self, row: int) -> str:
        """Human name of a standard-form row, e.g. ``per_video['v17']`` or ``video_share.lo``."""
        form = self.standard_form()
        fam_index, group = int(form.row_family[row]), int(form.row_group[row])
        if fam_index < 0:
            return "budget"
        fam = self.families[fam_index]
        if isinstance(fam, GroupFamily):
            return f"{fam.name}[{fam.labels[group]!r}]"
        if isinstance(fam, ShareFamily):
            side = "lo" if (fam.lo is not None and fam.lo > 0 and group == 0) else "hi"
            return f"{fam.name}.{side}"
        return f"{fam.name}[{group}]" if fam.matrix.shape[0] > 1 else fam.name

    # ----------------------------------------------------------------- checking

    def indicator(self, indices) -> np.ndarray:
        """0/1 vector of a selection; rejects out-of-range or repeated indices."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise ValueError(f"selection has indices outside [0, {self.n})")
        x = np.zeros(self.n, dtype=np.float64)
        x[idx] = 1.0
        if int(x.sum()) != idx.size:
            raise ValueError("selection has repeated indices")
        return x

    def objective(self, indices) -> float:
        idx = np.asarray(indices, dtype=np.int64)
        return float(self.scores[idx].sum()) if idx.size else 0.0

    def check(self, indices, tol: float = 1e-6) -> list[Violation]:
        """Every violated constraint of a selection, recomputed from scratch (independent of solvers)."""
        x = self.indicator(indices)
        out: list[Violation] = []
        total = float(x.sum())
        if total < self.budget_lo or total > self.budget_hi:
            out.append(Violation("budget", None, total, self.budget_lo, self.budget_hi))
        for fam in self.families:
            if isinstance(fam, GroupFamily):
                counts = fam.counts(x)
                bad = np.flatnonzero((counts < fam.lo - tol) | (counts > fam.hi + tol))
                out.extend(
                    Violation(fam.name, fam.labels[g], float(counts[g]), float(fam.lo[g]), float(fam.hi[g]))
                    for g in bad
                )
            elif isinstance(fam, ShareFamily):
                a, b = float(x[fam.a_mask].sum()), float(x[fam.b_mask].sum())
                lo = -math.inf if fam.lo is None else fam.lo * b
                hi = math.inf if fam.hi is None else fam.hi * b
                if a < lo - tol or a > hi + tol:
                    out.append(Violation(fam.name, None, a, lo, hi))
            else:
                values = fam.matrix @ x
                bad = np.flatnonzero((values < fam.lo - tol) | (values > fam.hi + tol))
                out.extend(
                    Violation(fam.name, int(r), float(values[r]), float(fam.lo[r]), float(fam.hi[r]))
                    for r in bad
                )
        return out

    def constraint_table(self, indices, detail_limit: int = 50) -> list[dict]:
        """Per-constraint rows (name, kind, group, lo, hi, achieved, binding, violated) for reports.

        Families with more than ``detail_limit`` groups get one summary row (group ``"*"``) with the
        counts of binding and violated groups; smaller ones get a row per group as well.
        """
        x = self.indicator(indices)
        rows: list[dict] = []
        total = float(x.sum())
        rows.append(_table_row("budget", "budget", None, self.budget_lo, self.budget_hi, total))
        for fam in self.families:
            if isinstance(fam, GroupFamily):
                counts = fam.counts(x)
                groups = np.flatnonzero((fam.lo > 0) | (fam.hi < fam.sizes))
                lo, hi, got = fam.lo[groups], np.minimum(fam.hi[groups], fam.sizes[groups]), counts[groups]
                binding = (np.abs(got - lo) < 1e-9) & (lo > 0) | (np.abs(got - fam.hi[groups]) < 1e-9)
                violated = (got < lo - 1e-6) | (got > hi + 1e-6)
                rows.append(
                    {
                        "name": fam.name,
                        "kind": fam.kind,
                        "group": "*",
                        "groups": int(fam.labels.size),
                        "bounded_groups": int(groups.size),
                        "lo": float(lo.min()) if groups.size else 0.0,
                        # the bound as set (a cap no group reaches is still the cap)
                        "hi": float(fam.hi[groups].max()) if groups.size else _finite_max(fam.hi),
                        "achieved": float(got.sum()) if groups.size else 0.0,
                        "binding": int(binding.sum()),
                        "violated": int(violated.sum()),
                        "largest_group": float(counts.max()) if counts.size else 0.0,
                    }
                )
                if fam.labels.size <= detail_limit:
                    for g in range(fam.labels.size):
                        rows.append(
                            _table_row(fam.name, fam.kind, fam.labels[g], fam.lo[g], fam.hi[g], counts[g])
                        )
            elif isinstance(fam, ShareFamily):
                a, b = float(x[fam.a_mask].sum()), float(x[fam.b_mask].sum())
                share = a / b if b else 0.0
                row = _table_row(
                    fam.name,
                    "share",
                    None,
                    0.0 if fam.lo is None else fam.lo,
                    1.0 if fam.hi is None else fam.hi,
                    share,
                )
                row.update(count=a, of=b)
                # tight at whole rows: one more (or one fewer) row of the mask would break a bound
                lo_s, hi_s = fam.lo, fam.hi
                row["binding"] = bool(b > 0 and ((hi_s is not None and hi_s < 1 and (a + 1) / b > hi_s + 1e-12)
                                                 or (lo_s is not None and lo_s > 0 and (a - 1) / b < lo_s - 1e-12)))
                rows.append(row)
            else:
                values = fam.matrix @ x
                for r in range(values.size):
                    rows.append(_table_row(fam.name, "linear", r, fam.lo[r], fam.hi[r], values[r]))
        return rows

    # ----------------------------------------------------------------- solving

    def solve(
        self,
        solver: str = "auto",
        time_limit: float | None = None,
        mip_gap: float = 1e-4,
        seed: int = 0,
        threads: int | None = None,
        verbose: bool = False,
        **options,
    ) -> Selection:
        """Solve with one backend and re-verify the answer with :meth:`check`.

        A backend answer that violates a constraint is never returned as feasible: its status
        becomes "error" and the message lists the violations.
        """
        from gdo_opt.solvers import SolveOptions, get_solver

        backend = get_solver(solver)
        opts = SolveOptions(
            time_limit=time_limit, mip_gap=mip_gap, seed=seed, threads=threads, verbose=verbose, extra=options
        )
        start = time.perf_counter()
        try:
            selection = backend(self, opts)
        except ImportError as error:
            selection = self.empty_selection(solver, "error", f"{solver}: {error}")
        selection.seconds = time.perf_counter() - start
        selection.indices = np.unique(np.asarray(selection.indices, dtype=np.int64))
        if selection.status in ("optimal", "feasible"):
            violations = self.check(selection.indices)
            if violations:
                shown = "; ".join(str(v) for v in violations[:5])
                more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
                selection.status = "error"
                selection.message = (
                    f"{selection.solver} returned a selection violating {len(violations)} "
                    f"constraint(s): {shown}{more}. {selection.message}"
                ).strip()
            else:
                selection.objective = self.objective(selection.indices)
                selection.gap = relative_gap(selection.objective, selection.bound)
        return selection

    def empty_selection(self, solver: str, status: str, message: str, bound: float = math.nan) -> Selection:
        return Selection(
            indices=np.zeros(0, dtype=np.int64),
            objective=math.nan,
            bound=bound,
            gap=math.inf,
            status=status,
            solver=solver,
            seconds=0.0,
            message=message,
        )

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


# --------------------------------------------------------------------------- helpers


def _finite_max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.inf


def _table_row(name, kind, group, lo, hi, achieved) -> dict:
    lo, hi, achieved = float(lo), float(hi), float(achieved)
    return {
        "name": name,
        "kind": kind,
        "group": group,
        "lo": lo,
        "hi": hi,
        "achieved": achieved,
        "binding": bool((lo > 0 and abs(achieved - lo) < 1e-9) or abs(achieved - hi) < 1e-9),
        "violated": bool(achieved < lo - 1e-6 or achieved > hi + 1e-6),
    }
