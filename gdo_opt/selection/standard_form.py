"""The one matrix every solver reads: max cᵀx s.t. row_lo ≤ A x ≤ row_hi, x ∈ {0,1}ᴺ.

Row 0 is the budget; then each family's rows, in the order they were added, as the family
builds them (``Family.rows``). ``row_family`` / ``row_group`` name every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class StandardForm:
    """``row_family[r]`` indexes ``problem.families`` (−1 = budget); ``row_group[r]`` is the row's
    id inside its family (a group index, a share side, a linear row)."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    row_family: np.ndarray
    row_group: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape


def build_standard_form(problem) -> StandardForm:
    n = problem.n
    blocks = [sp.csr_matrix((np.ones(n), np.arange(n), np.array([0, n])), shape=(1, n))]
    row_lo = [np.array([float(problem.budget_lo)])]
    row_hi = [np.array([float(problem.budget_hi)])]
    row_family = [np.array([-1])]
    row_group = [np.array([0])]
    for index, fam in enumerate(problem.families):
        block = fam.rows(n)
        blocks.append(sp.csr_matrix(block.matrix))
        row_lo.append(np.asarray(block.lo, dtype=np.float64))
        row_hi.append(np.asarray(block.hi, dtype=np.float64))
        row_family.append(np.full(block.matrix.shape[0], index))
        row_group.append(np.asarray(block.ids, dtype=np.int64))
    A = sp.vstack(blocks, format="csr")
    A.sort_indices()
    return StandardForm(
        c=problem.scores,
        A=A,
        row_lo=np.concatenate(row_lo),
        row_hi=np.concatenate(row_hi),
        row_family=np.concatenate(row_family).astype(np.int64),
        row_group=np.concatenate(row_group).astype(np.int64),
    )
