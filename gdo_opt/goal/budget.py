"""How many samples a goal keeps (K): fixed, a ratio of the pool, or derived from the pool itself.

The automatic rule asks for enough samples to represent the pool's strata (its effective number
and its tail) and refuses a budget the pool cannot fill with positive-VDS samples, so the budget
grows with the pool's diversity rather than with its raw size. Every intermediate number goes
into the report so the choice can be audited.
"""

from __future__ import annotations

import math

import numpy as np

from gdo_opt.errors import GdoError, ParameterError
from gdo_opt.goal.preset import BudgetRule


def effective_strata(codes: np.ndarray) -> tuple[float, np.ndarray]:
    """exp(entropy) of the stratum distribution, and the stratum shares sorted descending."""
    counts = np.bincount(codes)
    counts = counts[counts > 0]
    p = counts / counts.sum()
    entropy = float(-(p * np.log(p)).sum())
    return math.exp(entropy), np.sort(p)[::-1]


def choose_budget(
    rule: BudgetRule,
    n: int,
    stratum_codes: np.ndarray,
    reachable: int,
    vds: np.ndarray | None = None,
    target_count: int | None = None,
    feasibility_caps: dict[str, int] | None = None,
) -> tuple[int, dict]:
    """K and an audit record.

    ``reachable``: the most rows dedup and caps allow (K never exceeds it). ``feasibility_caps``:
    the largest K each share constraint can support with the rows the pool has (auto rule only:
    a fixed count or --target-count is taken as asked, and the engine explains if it is infeasible).
    """
    if n == 0:
        raise GdoError("budget: the pool has no eligible candidates")
    info: dict = {"kind": rule.kind, "pool": int(n), "reachable": int(reachable)}
    if target_count is not None:
        if target_count < 1:
            raise ParameterError("target_count", "must be >= 1", target_count)
        raw = int(target_count)
        info["kind"] = "override"
        info["rule"] = f"--target-count {target_count}"
    elif rule.kind == "fixed":
        raw = int(rule.count)
        info["rule"] = f"budget.count = {rule.count}"
    elif rule.kind == "ratio":
        raw = max(1, int(round(rule.ratio * n)))
        info["rule"] = f"round({rule.ratio} * {n})"
    else:
        n_eff, shares = effective_strata(stratum_codes)
        tail = int(np.searchsorted(np.cumsum(shares), rule.tail_coverage - 1e-12) + 1)
        tail = min(tail, shares.size)
        k_eff = rule.per_stratum * n_eff
        k_tail = rule.per_stratum * tail
        raw = int(math.ceil(max(k_eff, k_tail) - 1e-9))
        info.update(
            effective_strata=round(n_eff, 4),
            strata=int(shares.size),
            tail_strata=tail,
            k_effective=int(math.ceil(k_eff - 1e-9)),
            k_tail=int(k_tail),
            rule=f"max({rule.per_stratum} * N_eff, {rule.per_stratum} * #strata covering {rule.tail_coverage})",
        )
        limits = {"max_ratio": int(rule.max_ratio * n)}
        if rule.min_positive_vds_share > 0 and vds is not None and np.isfinite(vds).any():
            positive = int((vds > 0).sum())
            info["positive_vds"] = positive
            limits["positive_vds"] = int(positive / rule.min_positive_vds_share)
        limits.update(feasibility_caps or {})
        info["limits"] = dict(sorted(limits.items()))
        raw = max(1, min(raw, *limits.values()))
    k = raw
    if target_count is None:
        k = max(k, rule.min)
        if rule.max is not None:
            k = min(k, rule.max)
    info["requested"] = int(raw)
    if k > reachable:
        info["note"] = f"K = {k} exceeds the {reachable} rows dedup and per-video caps allow; capped"
        k = reachable
    info["k"] = int(k)
    return int(k), info
