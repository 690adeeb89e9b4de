"""Any rows lo ≤ A x ≤ hi (CSR): token budgets, coverage rows, user constraints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from gdo_opt.selection.families.base import Family, RowBlock, row_violations, table_row


@dataclass(eq=False)
class LinearFamily(Family):
    name: str
    matrix: sp.csr_matrix
    lo: np.ndarray
    hi: np.ndarray

    kind = "linear"

    def rows(self, n: int) -> RowBlock:
        return RowBlock(self.matrix, self.lo, self.hi, np.arange(self.matrix.shape[0]))

    def row_name(self, row_id: int) -> str:
        return f"{self.name}[{row_id}]" if self.matrix.shape[0] > 1 else self.name

    def violations(self, x, tol) -> list:
        return row_violations(self.name, self.matrix @ x, self.lo, self.hi, tol)

    def table(self, x, detail_limit) -> list[dict]:
        values = self.matrix @ x
        return [table_row(self.name, "linear", r, self.lo[r], self.hi[r], values[r]) for r in range(values.size)]
