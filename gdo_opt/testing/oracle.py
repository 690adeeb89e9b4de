"""A brute-force oracle that shares no code with the engine: it reads the instance's own description.

``Description`` is a selection instance written down as plain arrays — scores, a budget and a list
of constraints, each the arguments of one ``SelectionProblem.add_*`` call. ``problem()`` builds the
engine's problem from it through the public API; ``brute_force()`` enumerates every subset and
evaluates each constraint directly on the raw arrays (labels, masks, coefficient rows), never
through the families or the standard form the solvers read. Exact for N ≤ ~18.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TOL = 1e-9


@dataclass
class Description:
    """``constraints``: (kind, name, kwargs) with kind in group / cap / exclusive / share / linear."""

    scores: np.ndarray
    budget: tuple[int | None, int | None] | int
    constraints: list[tuple[str, str, dict]] = field(default_factory=list)

    def add(self, kind: str, name: str, **kwargs) -> Description:
        self.constraints.append((kind, name, kwargs))
        return self

    @property
    def n(self) -> int:
        return int(np.asarray(self.scores).size)

    def problem(self):
        """The engine's SelectionProblem, built through its public API."""
        from gdo_opt.selection.problem import SelectionProblem

        p = SelectionProblem(self.scores, self.budget)
        methods = {"group": p.add_group_bounds, "cap": p.add_cap, "exclusive": p.add_exclusive,
                   "share": p.add_share, "linear": p.add_linear}
        for kind, name, kwargs in self.constraints:
            methods[kind](name=name, **kwargs)
        return p


def _budget(desc: Description) -> tuple[int, int]:
    budget = desc.budget
    lo, hi = budget if isinstance(budget, (tuple, list)) else (budget, budget)
    return (0 if lo is None else int(lo)), (desc.n if hi is None else int(hi))


def _labels(values) -> list:
    """Per candidate its label, or None for "no group" (None, "", -1, NaN)."""
    out = []
    for v in list(values):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" or (
                not isinstance(v, str) and v == -1):
            out.append(None)
        else:
            out.append(v)
    return out


def _bound(spec, label, default):
    if spec is None:
        return default
    if isinstance(spec, dict):
        value = spec.get(label)
        return default if value is None else float(value)
    return float(spec)


def _count_ok(X: np.ndarray, labels: list, lo, hi, extra_labels=()) -> np.ndarray:
    """Rows of X (subsets) whose count per label lies in [lo(label), hi(label)]."""
    ok = np.ones(X.shape[0], dtype=bool)
    present = [lab for lab in dict.fromkeys(labels) if lab is not None]
    for label in list(present) + [lab for lab in extra_labels if lab not in present]:
        member = np.array([lab == label for lab in labels], dtype=np.float64)
        count = X @ member
        ok &= (count >= _bound(lo, label, 0.0) - TOL) & (count <= _bound(hi, label, math.inf) + TOL)
    return ok


def feasible_rows(desc: Description, X: np.ndarray) -> np.ndarray:
    """Which subsets (rows of the 0/1 matrix X) satisfy the budget and every constraint."""
    lo_k, hi_k = _budget(desc)
    size = X.sum(axis=1)
    ok = (size >= lo_k) & (size <= hi_k)
    for kind, _name, kw in desc.constraints:
        if kind in ("group", "cap", "exclusive"):
            labels = _labels(kw["labels"])
            if kind == "group":
                lo, hi = kw.get("lo"), kw.get("hi")
            elif kind == "cap":
                lo, hi = None, kw["at_most"]
            else:
                lo, hi = None, 1
            named = [lab for spec in (lo, hi) if isinstance(spec, dict) for lab in spec]
            ok &= _count_ok(X, labels, lo, hi, named)
        elif kind == "share":
            a = X @ np.asarray(kw["mask"], dtype=np.float64)
            of = kw.get("of")
            b = X @ (np.ones(desc.n) if of is None else np.asarray(of, dtype=np.float64))
            if kw.get("lo") is not None:
                ok &= a >= kw["lo"] * b - TOL
            if kw.get("hi") is not None:
                ok &= a <= kw["hi"] * b + TOL
        elif kind == "linear":
            coef = np.atleast_2d(np.asarray(kw["coef"], dtype=np.float64))
            act = X @ coef.T
            lo = np.broadcast_to(-np.inf if kw.get("lo") is None else np.asarray(kw["lo"], float), (coef.shape[0],))
            hi = np.broadcast_to(np.inf if kw.get("hi") is None else np.asarray(kw["hi"], float), (coef.shape[0],))
            ok &= ((act >= lo - TOL) & (act <= hi + TOL)).all(axis=1)
        else:
            raise ValueError(f"unknown constraint kind {kind!r}")
    return ok


def brute_force(desc: Description) -> tuple[float | None, np.ndarray | None]:
    """(optimum, an optimal subset) over all 2^N subsets; (None, None) when none is feasible."""
    n = desc.n
    if n > 20:
        raise ValueError(f"brute force needs N ≤ 20, got {n}")
    codes = np.arange(2**n, dtype=np.int64)
    X = ((codes[:, None] >> np.arange(n)) & 1).astype(np.float64)
    ok = feasible_rows(desc, X)
    if not ok.any():
        return None, None
    values = np.where(ok, X @ np.asarray(desc.scores, dtype=np.float64), -np.inf)
    best = int(np.argmax(values))
    return float(values[best]), np.flatnonzero(X[best])


def is_feasible(desc: Description, indices) -> bool:
    """The oracle's own check of one subset."""
    x = np.zeros((1, desc.n))
    x[0, np.asarray(indices, dtype=np.int64)] = 1.0
    return bool(feasible_rows(desc, x)[0])
