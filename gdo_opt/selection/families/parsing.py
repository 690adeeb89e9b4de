"""Argument parsing behind the families: budgets, labels (encoded once with ``pandas.factorize``
so counting a selection per group is one ``bincount``), per-group and per-row bounds, masks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gdo_opt.selection.result import fmt_number


def parse_budget(budget, n: int) -> tuple[int, int]:
    """An int K, or a (lo, hi) pair (a None side means 0 / n); NaN, floats with a fraction, arrays
    of another length and a bare None are errors naming ``budget``."""
    from gdo_opt.errors import ParameterError

    if budget is None:
        raise ParameterError("budget", "is required: an int K or a (lo, hi) pair (use (None, None) for any size)")
    if isinstance(budget, np.ndarray):
        budget = budget.tolist()
    if isinstance(budget, (tuple, list)):
        if len(budget) != 2:
            raise ParameterError("budget", "must be an int or a (lo, hi) pair", budget)
        lo, hi = budget
    else:
        lo = hi = budget
    lo = 0 if lo is None else lo
    hi = n if hi is None else hi
    for value in (lo, hi):
        if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
            raise ParameterError("budget", "must be integral", budget)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError("budget", "must be an int or a (lo, hi) pair of ints", budget) from None
        if not math.isfinite(number) or number != int(number):
            raise ParameterError("budget", "must be integral (finite, no fraction)", budget)
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi < 0:
        raise ParameterError("budget", "must be non-negative", budget)
    if lo > hi:
        raise ParameterError("budget", f"lo > hi ({lo} > {hi})", budget)
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
