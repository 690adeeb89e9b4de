"""Constraint families of a SelectionProblem, stored vectorized, and the argument parsing behind them.

A family is either label codes + per-group bounds (quotas, caps, dedup), two masks (a share), or
sparse rows (anything linear). Labels are encoded once with ``pandas.factorize`` so that counting
a selection per group is one ``bincount``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp


def fmt_number(value: float) -> str:
    if value is None:
        return "None"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if value == int(value) else f"{value:.6g}"


@dataclass
class GroupFamily:
    """Bounds on the count selected per group of a labelling (quotas, caps, dedup)."""

    name: str
    kind: str  # "group" | "cap" | "exclusive"
    codes: np.ndarray  # int64 (N,), -1 = not in any group
    labels: np.ndarray  # object (G,), the label of each code
    lo: np.ndarray  # float64 (G,)
    hi: np.ndarray  # float64 (G,), inf = no upper bound
    sizes: np.ndarray  # int64 (G,), members per group

    def counts(self, x: np.ndarray) -> np.ndarray:
        member = self.codes >= 0
        return np.bincount(self.codes[member], weights=x[member], minlength=self.labels.size)

    def active_groups(self) -> np.ndarray:
        """Groups whose bounds can bind: lo > 0 or hi < size (the rest need no row)."""
        return np.flatnonzero((self.lo > 0) | (self.hi < self.sizes))


@dataclass
class ShareFamily:
    """lo·Σ_B x ≤ Σ_A x ≤ hi·Σ_B x, stored as two masks."""

    name: str
    a_mask: np.ndarray  # bool (N,)
    b_mask: np.ndarray  # bool (N,)
    lo: float | None
    hi: float | None


@dataclass
class LinearFamily:
    """Arbitrary rows lo ≤ A x ≤ hi (CSR)."""

    name: str
    matrix: sp.csr_matrix
    lo: np.ndarray
    hi: np.ndarray


def parse_budget(budget, n: int) -> tuple[int, int]:
    if isinstance(budget, (tuple, list)):
        if len(budget) != 2:
            raise ValueError(f"budget must be an int or a (lo, hi) pair, got {budget!r}")
        lo, hi = budget
    else:
        lo = hi = budget
    lo = 0 if lo is None else lo
    hi = n if hi is None else hi
    for value in (lo, hi):
        if isinstance(value, (bool, np.bool_)) or float(value) != int(value):
            raise ValueError(f"budget must be integral, got {budget!r}")
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi < 0:
        raise ValueError(f"budget must be non-negative, got {budget!r}")
    if lo > hi:
        raise ValueError(f"budget lo > hi ({lo} > {hi})")
    return lo, hi


def encode_labels(labels, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes per candidate (-1 = no group) and the label of each code, vectorized.

    A ``pandas.Categorical`` (or categorical Series) is taken as it is: its codes need no
    factorizing, which matters for millions of rows, and its categories name the groups.
    """
    if isinstance(labels, pd.Series) and isinstance(labels.dtype, pd.CategoricalDtype):
        labels = labels.array
    if isinstance(labels, pd.Categorical):
        if len(labels) != n:
            raise ValueError(f"{name}: labels has shape ({len(labels)},), expected ({n},)")
        codes = np.asarray(labels.codes, dtype=np.int64)
        uniques = np.asarray(labels.categories, dtype=object)
        empty = np.flatnonzero((uniques == "") | (uniques == -1))
        if empty.size:
            codes = np.where(np.isin(codes, empty), -1, codes)
        return codes, uniques
    values = labels.to_numpy() if isinstance(labels, (pd.Series, pd.Index)) else np.asarray(labels)
    if values.ndim != 1 or values.size != n:
        raise ValueError(f"{name}: labels has shape {values.shape}, expected ({n},)")
    kind = values.dtype.kind
    if kind in "iu":
        missing = values == -1
    elif kind == "f":
        missing = np.isnan(values) | (values == -1)
    elif kind == "b":
        missing = np.zeros(n, dtype=bool)
    elif kind in "US":
        missing = values == values.dtype.type("")
    else:  # object: strings, ints, None, NaN mixed
        missing = pd.isna(values) | (values == "") | (values == -1)
        missing = np.asarray(missing, dtype=bool)
    codes = np.full(n, -1, dtype=np.int64)
    present = ~missing
    sub_codes, uniques = pd.factorize(values[present], sort=False)
    codes[present] = sub_codes
    return codes, np.asarray(uniques, dtype=object)


def with_dict_labels(uniques: np.ndarray, *bounds) -> np.ndarray:
    """Groups named in a bound dict but held by no candidate become empty groups (size 0), so a
    floor on them is reported as infeasible instead of silently ignored."""
    known = set(uniques.tolist())
    extra = [label for bound in bounds if isinstance(bound, dict) for label in bound if label not in known]
    if not extra:
        return uniques
    return np.concatenate([uniques, np.asarray(list(dict.fromkeys(extra)), dtype=object)])


def bounds_per_group(value, uniques: np.ndarray, default: float, name: str, key: str) -> np.ndarray:
    out = np.full(uniques.size, default, dtype=np.float64)
    if value is None:
        return out
    if isinstance(value, dict):
        position = {label: i for i, label in enumerate(uniques.tolist())}
        for label, bound in value.items():
            if label not in position:
                raise ValueError(f"{name}: {key} names group {label!r}, which no candidate has")
            out[position[label]] = _bound_value(bound, name, key, label, default)
        return out
    if np.ndim(value) == 0:
        out[:] = _bound_value(value, name, key, None, default)
        return out
    raise ValueError(f"{name}: {key} must be a number, a dict label -> number, or None")


def _bound_value(bound, name, key, label, default) -> float:
    if bound is None:
        return default
    try:
        value = float(bound)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {key} for group {label!r} is not a number: {bound!r}") from None
    if math.isnan(value):
        raise ValueError(f"{name}: {key} for group {label!r} is NaN")
    if value < 0:
        where = "" if label is None else f" for group {label!r}"
        raise ValueError(f"{name}: negative {key}{where}: {fmt_number(value)}")
    return value


def row_bounds(value, rows: int, default: float, name: str, key: str) -> np.ndarray:
    if value is None:
        return np.full(rows, default)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(rows, float(arr))
    if arr.shape != (rows,):
        raise ValueError(f"{name}: {key} has shape {arr.shape}, expected ({rows},)")
    if np.isnan(arr).any():
        raise ValueError(f"{name}: {key} has NaN")
    return arr


def as_mask(mask, n: int, name: str, key: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 1 or arr.size != n:
        raise ValueError(f"{name}: {key} has length {arr.size}, expected {n}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name}: {key} must be boolean (or 0/1)")
        arr = arr.astype(bool)
    return arr


def group_rows(codes: np.ndarray, groups: np.ndarray, n_groups: int, n: int) -> sp.csr_matrix:
    """CSR with one row per group in ``groups`` and a 1 for each member, built without loops."""
    row_of_group = np.full(n_groups, -1, dtype=np.int64)
    row_of_group[groups] = np.arange(groups.size)
    member = codes >= 0
    rows = np.full(n, -1, dtype=np.int64)
    rows[member] = row_of_group[codes[member]]
    cols = np.flatnonzero(rows >= 0)
    rows = rows[cols]
    order = np.argsort(rows, kind="stable")
    rows, cols = rows[order], cols[order]
    indptr = np.zeros(groups.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=groups.size), out=indptr[1:])
    return sp.csr_matrix((np.ones(cols.size), cols, indptr), shape=(groups.size, n))
