"""The hard instance family (issue 15): its shape, determinism, and that its knapsack, covering,
quota and share rows really bind (otherwise it would not be hard)."""

from __future__ import annotations

import numpy as np
from gdo_opt.solvers.highs import solve_lp

from gdo_opt.testing.instances import hard_small_instance, make_hard_instance
from gdo_opt.testing.oracle import brute_force


def test_shape_follows_the_issue():
    inst = make_hard_instance(50_000, seed=1)
    p = inst.problem
    assert inst.k == 1_000 and (p.budget_lo, p.budget_hi) == (1_000, 1_000)
    assert p.family("stratum").labels.size == 1_000  # N/50 strata
    videos = np.unique(inst.video[inst.video >= 0]).size
    assert 0.12 * inst.n < videos <= 0.15 * inst.n
    caps = p.family("per_video").hi
    assert caps.min() >= 2 and caps.max() <= 8
    groups = inst.dedup[inst.dedup >= 0]
    sizes = np.bincount(groups)[np.unique(groups)]
    assert sizes.min() >= 2 and sizes.max() <= 5
    assert 0.08 * inst.n < groups.size <= 0.10 * inst.n
    # dedup groups cut across videos: some group holds items of two different videos
    member = inst.dedup >= 0
    d, v = inst.dedup[member], inst.video[member]
    per_group = {int(g): set() for g in np.unique(d)}
    for g, vv in zip(d.tolist(), v.tolist()):
        per_group[g].add(vv)
    assert sum(len(s) > 1 for s in per_group.values()) > 0.5 * len(per_group)
    # quotas [⌊0.8c⌋, ⌈1.2c⌉] around the proportional share c
    fam = p.family("stratum")
    c = inst.k * fam.sizes / inst.n
    assert np.array_equal(fam.lo, np.floor(0.8 * c)) and np.array_equal(fam.hi, np.ceil(1.2 * c))
    kinds = {f.name: f.kind for f in p.families}
    assert [name for name, kind in kinds.items() if kind == "share"] == ["video_share", "temporal_in_video",
                                                                         "multi_turn"]
    # scores grow with tokens
    assert np.corrcoef(p.scores, np.log(inst.tokens))[0, 1] > 0.2


def test_deterministic():
    a, b = make_hard_instance(5_000, seed=3), make_hard_instance(5_000, seed=3)
    assert np.array_equal(a.problem.scores, b.problem.scores)
    fa, fb = a.problem.standard_form(), b.problem.standard_form()
    assert (fa.A != fb.A).nnz == 0 and np.array_equal(fa.row_lo, fb.row_lo) and np.array_equal(fa.row_hi, fb.row_hi)
    assert not np.array_equal(a.problem.scores, make_hard_instance(5_000, seed=4).problem.scores)


def test_knapsack_covering_quota_and_share_rows_bind_in_the_lp():
    inst = make_hard_instance(10_000, seed=0)
    p = inst.problem
    f = p.standard_form()
    lp = solve_lp(f.c, f.A, f.row_lo, f.row_hi)
    assert lp.status == "optimal"
    binding = {p.families[int(fi)].name for fi, y in zip(f.row_family, lp.row_dual) if fi >= 0 and abs(y) > 1e-9}
    assert {"token_budget", "gpu_floor", "stratum", "video_share", "multi_turn"} <= binding


def test_small_instances_are_a_mix_of_feasible_and_infeasible():
    found = [brute_force(hard_small_instance(seed))[0] is not None for seed in range(12)]
    assert 6 <= sum(found) < 12
    assert all(14 <= hard_small_instance(seed).n <= 18 for seed in range(12))
