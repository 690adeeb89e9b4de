"""What a constraint family must answer, so that the problem and the solvers never switch on types.

A family owns its behaviour: its rows of the standard form, the name of each row, the violations
of a subset, its rows of the report table, its contribution to the greedy (counts per group and
dense rows), the candidates it wants in a pricing core, and its counting arguments when the
problem is infeasible. A new family is one new class here; no solver changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class RowBlock:
    """A family's rows of the standard form: lo ≤ matrix·x ≤ hi; ``ids`` name them (``row_name``)."""

    matrix: sp.csr_matrix
    lo: np.ndarray
    hi: np.ndarray
    ids: np.ndarray


@dataclass
class CountTerm:
    """For the greedy: lo_g ≤ count of selected items with code g ≤ hi_g (code −1: no group)."""

    name: str
    codes: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    reserve: bool  # protect its floors while filling


@dataclass
class RowTerm:
    """For the greedy: one row lo ≤ w·x ≤ hi; ``weights()`` builds the dense w on demand."""

    name: str
    weights: Callable[[], np.ndarray]
    lo: float
    hi: float


@dataclass
class CoreContext:
    """What a family needs to name its pricing-core candidates."""

    order: np.ndarray  # candidates by descending score
    rank: np.ndarray  # position of each candidate in ``order``
    budget_hi: int
    floor_factor: float
    floor_extra: int


class Family:
    """Base class of constraint families (see the module docstring for the contract)."""

    name: str
    kind: str
    counted = False  # a count per group with lo/hi/codes/labels/counts(): the greedy repair raises floors

    def rows(self, n: int) -> RowBlock:
        raise NotImplementedError

    def row_name(self, row_id: int) -> str:
        return f"{self.name}[{row_id}]"

    def violations(self, x: np.ndarray, tol: float) -> list:
        raise NotImplementedError

    def table(self, x: np.ndarray, detail_limit: int) -> list[dict]:
        raise NotImplementedError

    def greedy_terms(self, n: int, k_lo: int, k_hi: int) -> tuple[list[CountTerm], list[RowTerm]]:
        """Default: every row as a dense greedy row."""
        block = self.rows(n)
        rows = [
            RowTerm(self.row_name(int(i)), (lambda r=r: block.matrix[r].toarray().ravel()),
                    float(block.lo[r]), float(block.hi[r]))
            for r, i in enumerate(block.ids)
        ]
        return [], rows

    def core_members(self, ctx: CoreContext) -> np.ndarray | None:
        """Candidates this family wants in the first pricing core (None: nothing special)."""
        return None

    def upper_part(self, cols: np.ndarray):
        """This family's upper bounds restricted to ``cols`` (for counting arguments), or None."""
        return None

    def counting_reasons(self, problem, uppers: list, max_selectable: Callable) -> list[str]:
        """Cheap proofs of infeasibility this family can give (``diagnose``)."""
        return []


def table_row(name, kind, group, lo, hi, achieved) -> dict:
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


def row_violations(name, values, lo, hi, tol, label=lambda r: int(r)) -> list:
    from gdo_opt.selection.result import Violation

    bad = np.flatnonzero((values < lo - tol) | (values > hi + tol))
    return [Violation(name, label(r), float(values[r]), float(lo[r]), float(hi[r])) for r in bad]

