"""What a solve returns: a checked ``Selection`` (indices + certificate) and ``Violation`` rows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdo_opt.solvers.base import Status


def fmt_number(value: float) -> str:
    if value is None:
        return "None"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if value == int(value) else f"{value:.6g}"


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
    """A solve's answer, checked once outside the backend (``gdo_opt.selection.solve``).

    ``indices`` always satisfy every constraint (empty when there is no subset); ``bound`` is a
    valid upper bound on the optimum (NaN without one) and ``gap`` = (bound − objective) /
    max(1, |bound|). ``status``: see ``gdo_opt.solvers.Status``.
    """

    indices: np.ndarray
    objective: float
    bound: float
    gap: float
    status: Status
    solver: str
    seconds: float
    message: str = ""
    info: dict = field(default_factory=dict)

    @property
    def has_selection(self) -> bool:
        """True when ``indices`` is a checked feasible subset (optimal, feasible, or time_limit with one)."""
        return self.status.has_selection or (self.status == Status.TIME_LIMIT and math.isfinite(self.objective))

    def __len__(self) -> int:
        return int(self.indices.size)

    def __repr__(self) -> str:
        return (
            f"Selection(n={self.indices.size}, status={self.status.value!r}, solver={self.solver!r}, "
            f"objective={self.objective:.6g}, bound={self.bound:.6g}, gap={self.gap:.3g}, "
            f"seconds={self.seconds:.3f})"
        )
