"""Greedy: feasible whenever the problem is, infeasible only when it is, bound ≥ optimum, and the
vectorized fixed point reproduces the one-by-one greedy rule."""

from __future__ import annotations

import numpy as np
import pytest
from gdo_opt.solvers.greedy.fill import _fixed_point, _Ranker
from gdo_opt.solvers.greedy.repair import Greedy

from gdo_opt.selection.problem import SelectionProblem
from gdo_opt.testing.instances import make_instance, random_small_instance
from gdo_opt.testing.oracle import brute_force


@pytest.mark.parametrize("seed", range(40))
def test_greedy_feasible_iff_problem_feasible(seed):
    desc = random_small_instance(seed, n=int(np.random.default_rng(seed).integers(8, 13)))
    problem = desc.problem()
    optimum, _ = brute_force(desc)
    sel = problem.solve("greedy")
    if optimum is None:
        assert sel.status == "infeasible", sel.message
        assert sel.message
    else:
        assert sel.status in ("feasible", "optimal"), sel.message
        assert problem.check(sel.indices) == []
        assert sel.objective <= optimum + 1e-9
        assert sel.bound >= optimum - 1e-7  # the LP bound is certified
        assert sel.gap >= 0


def test_fixed_point_matches_sequential_rule():
    rng = np.random.default_rng(3)
    n = 3000
    scores = rng.normal(size=n)
    cap_codes = rng.integers(0, 200, n)
    grp_codes = rng.integers(0, 30, n)
    cap_hi = rng.integers(1, 4, 200)
    grp_hi = rng.integers(5, 40, 30)
    k = 400
    order = np.argsort(-scores, kind="stable")
    # the one-by-one rule
    used_c = np.zeros(200)
    used_g = np.zeros(30)
    taken = []
    for j in order:
        if len(taken) < k and used_c[cap_codes[j]] < cap_hi[cap_codes[j]] and used_g[grp_codes[j]] < grp_hi[grp_codes[j]]:
            taken.append(j)
            used_c[cap_codes[j]] += 1
            used_g[grp_codes[j]] += 1
    # the fixed point over the whole order at once
    rc, rg = _Ranker(cap_codes[order]), _Ranker(grp_codes[order])

    def rule(acc):
        before = np.cumsum(acc) - acc
        return (rc(acc) < cap_hi[cap_codes[order]]) & (rg(acc) < grp_hi[grp_codes[order]]) & (before < k)

    acc, exact = _fixed_point(rule, n, max_iter=10_000)
    assert exact == n
    assert sorted(order[acc].tolist()) == sorted(taken)


def test_phase_one_alone_respects_every_upper_bound_and_floors_by_reservation():
    inst = make_instance(20_000, seed=4)
    g = Greedy(inst.problem)
    g.fill()
    form = inst.problem.standard_form()
    act = form.A @ g.x.astype(float)
    # every upper bound holds; a whole-pool share is a count cap ⌊hi·K⌋, so it is checked against K
    over = np.flatnonzero(act > form.row_hi + 1e-9)
    assert all(inst.problem.row_name(int(r)) == "video_share.hi" for r in over)
    video = inst.problem.family("video_share")
    assert g.x[video.a_mask].sum() <= np.floor(video.hi * inst.k)
    stratum = inst.problem.family("stratum")
    counts = stratum.counts(g.x.astype(float))
    assert (counts >= stratum.lo).mean() > 0.95  # reservation keeps room for floors


@pytest.mark.parametrize("seed", range(3))
def test_greedy_close_to_optimum_on_gdo_instances(seed):
    inst = make_instance(8_000, seed=seed, preset=["notes", "temp", "minloss"][seed])
    exact = inst.problem.solve("highs")
    plain = inst.problem.solve("greedy", bound=False)
    assert plain.status == "feasible", plain.message
    assert "asking HiGHS" not in plain.message  # the heuristic itself repaired every floor
    assert inst.problem.check(plain.indices) == []
    assert plain.objective >= 0.98 * exact.objective
    sel = inst.problem.solve("greedy")  # with the LP bound and the LP-guided pass
    assert sel.status == ("optimal" if sel.gap <= 1e-4 else "feasible"), sel.message  # one status rule
    assert inst.problem.check(sel.indices) == []
    assert sel.objective >= max(plain.objective, 0.999 * exact.objective)
    assert sel.bound >= exact.objective - 1e-6
    assert sel.gap == pytest.approx((sel.bound - sel.objective) / max(1.0, abs(sel.bound)))


def test_bound_can_be_skipped():
    inst = make_instance(3_000, seed=1)
    sel = inst.problem.solve("greedy", bound=False)
    assert sel.status == "feasible"
    assert np.isnan(sel.bound) and sel.gap == np.inf
    assert "bound skipped" in sel.message


def test_infeasible_names_the_constraint():
    p = SelectionProblem(np.arange(6, dtype=float), 3)
    p.add_group_bounds(["a", "a", "b", "b", "b", "b"], lo={"a": 3}, name="quota")
    sel = p.solve("greedy")
    assert sel.status == "infeasible"
    assert "quota" in sel.message


def test_only_positive_scores_beyond_the_budget_floor():
    p = SelectionProblem([3.0, 2.0, -1.0, -2.0, 1.0], (2, 4))
    sel = p.solve("greedy")
    assert sel.indices.tolist() == [0, 1, 4]
    p2 = SelectionProblem([3.0, -2.0, -1.0, -3.0], (3, 4))
    assert p2.solve("greedy").indices.tolist() == [0, 1, 2]


def test_deterministic():
    inst = make_instance(5_000, seed=7, preset="temp_plus")
    a = inst.problem.solve("greedy", bound=False)
    b = make_instance(5_000, seed=7, preset="temp_plus").problem.solve("greedy", bound=False)
    assert np.array_equal(a.indices, b.indices)


# ----------------------------------------------------------------------------- the hard family


@pytest.mark.parametrize("seed", range(24))
def test_hard_small_feasible_iff_feasible_and_status_follows_the_gap(seed):
    from gdo_opt.testing.instances import hard_small_instance

    desc = hard_small_instance(seed)
    optimum, _ = brute_force(desc)
    sel = desc.problem().solve("greedy", mip_gap=1e-4)
    if optimum is None:
        assert sel.status == "infeasible", sel.message
        return
    assert sel.status in ("feasible", "optimal"), sel.message
    assert desc.problem().check(sel.indices) == []
    assert sel.bound >= optimum - 1e-7 and sel.objective <= optimum + 1e-9
    assert (sel.status == "optimal") == (sel.gap <= 1e-4 or sel.bound - sel.objective <= 1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_lagrangian_bound_is_valid_for_any_multipliers(seed):
    """Weak duality, checked against the brute force: random sign-correct multipliers never give
    a bound below the optimum (on the hard family and on the generic small instances)."""
    from gdo_opt.solvers.greedy.lagrange import Lagrangian, _signed

    from gdo_opt.testing.instances import hard_small_instance

    desc = hard_small_instance(seed) if seed % 2 else random_small_instance(seed, n=12)
    optimum, _ = brute_force(desc)
    if optimum is None:
        return
    lag = Lagrangian(desc.problem())
    rng = np.random.default_rng(seed)
    for _ in range(20):
        for g in lag.groups:
            g.y = _signed(rng.normal(0, 2, g.y.size), g.has_hi, g.has_lo)
        lag.w_y = _signed(rng.normal(0, 2, lag.w_y.size), np.isfinite(lag.w_hi), np.isfinite(lag.w_lo))
        value, _, _ = lag.evaluate()
        assert value >= optimum - 1e-9
    lag.fit_rows()
    lag.run(30, target=optimum)
    assert optimum - 1e-9 <= lag.result().bound


def test_inner_maximum_on_the_top_equals_the_full_one():
    from gdo_opt.solvers.greedy.lagrange import Lagrangian

    from gdo_opt.testing.instances import make_hard_instance

    lag = Lagrangian(make_hard_instance(20_000, seed=2).problem)
    lag.fit_rows()
    d = lag.reduced()
    fast = lag.inner_max(d)
    full = lag._inner_on(d, np.arange(lag.n))[0]
    assert np.isclose(d[fast].sum(), d[full].sum(), rtol=0, atol=1e-9)


def test_hard_family_is_repaired_and_certified():
    from gdo_opt.testing.instances import make_hard_instance

    inst = make_hard_instance(20_000, seed=1)
    sel = inst.problem.solve("greedy")
    assert sel.status in ("feasible", "optimal"), sel.message
    assert inst.problem.check(sel.indices) == [] and sel.indices.size == inst.k
    assert np.isfinite(sel.bound) and sel.gap < 1e-2, sel.message
    plain = inst.problem.solve("greedy", bound=False)
    assert plain.status == "feasible" and inst.problem.check(plain.indices) == []


@pytest.mark.parametrize("limit", [1e-3, 0.05, 0.5])
def test_tiny_time_limits_give_a_checked_subset_or_a_clear_status(limit):
    from gdo_opt.testing.instances import make_hard_instance

    inst = make_hard_instance(20_000, seed=3)
    sel = inst.problem.solve("greedy", time_limit=limit)
    assert sel.status in ("optimal", "feasible", "time_limit"), sel.message
    if sel.indices.size:
        assert inst.problem.check(sel.indices) == []
    if sel.status == "time_limit":
        assert "time limit" in sel.message


def test_many_linear_rows_keep_the_bound_valid():
    """More generic rows than the greedy prices densely (64): the rest get multiplier 0, a
    relaxation of fewer rows, so the bound stays valid."""
    from gdo_opt.solvers.greedy.lagrange import Lagrangian

    rng = np.random.default_rng(5)
    n = 400
    p = SelectionProblem(rng.normal(size=n), 40)
    coef = rng.uniform(0, 1, (100, n))
    p.add_linear(coef, hi=coef.sum(axis=1) * 0.12, name="rows")
    assert Lagrangian(p).W.shape[0] == 64
    exact = p.copy().solve("highs")
    sel = p.solve("greedy")
    assert sel.status in ("feasible", "optimal") and p.check(sel.indices) == []
    assert sel.bound >= exact.objective - 1e-7


def test_descending_matches_lexsort_with_ties():
    from gdo_opt.solvers.greedy.backend import descending

    rng = np.random.default_rng(2)
    primary = rng.integers(0, 30, 5000).astype(np.float64)  # many ties
    second = rng.integers(0, 4, 5000).astype(np.float64)
    third = rng.normal(size=5000)
    assert (descending(primary, second, third) == np.lexsort((-third, -second, -primary))).all()
    unique = rng.normal(size=5000)
    assert (descending(unique, third) == np.lexsort((-third, -unique))).all()


def testrank_within_groups_matches_lexsort():
    from gdo_opt.selection.families.group import rank_within_groups

    rng = np.random.default_rng(4)
    codes = rng.integers(0, 50, 3000)
    rank = rng.permutation(3000)
    order = np.lexsort((rank, codes))
    sc = codes[order]
    start = np.r_[True, sc[1:] != sc[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(sc.size), 0))
    expected = np.empty(sc.size, dtype=np.int64)
    expected[order] = np.arange(sc.size) - first
    assert (rank_within_groups(codes, rank) == expected).all()


def test_fresh_run_equals_a_new_one():
    """``fresh`` shares the setup; its fill (in another order, with or without pacing) must be
    the fill of a new ``Greedy`` in that order, and it must not touch the original's state."""
    from gdo_opt.testing.instances import make_hard_instance

    p = make_hard_instance(20_000, seed=2).problem
    base = Greedy(p)
    base.fill()
    before = base.x.copy()
    order = np.random.default_rng(0).permutation(p.n)
    for pace in (True, False):
        a = base.fresh(order, pace=pace)
        a.fill()
        b = Greedy(p, order=order, pace=pace)
        b.fill()
        assert (a.x == b.x).all() and a.total == b.total
    assert (base.x == before).all() and base.total == int(before.sum())


def test_guided_pass_rounds_the_lp_on_the_hard_family():
    """The LP-guided pass (an LP rounding plus a small MIP) closes the first fill's ~1% gap."""
    from gdo_opt.testing.instances import make_hard_instance

    inst = make_hard_instance(50_000, seed=0)
    sel = inst.problem.solve("greedy", mip_gap=1e-9)
    assert inst.problem.check(sel.indices) == []
    assert sel.gap < 1e-3, sel.message
    assert "guided pass" in sel.message


def test_time_limit_keeps_the_subset_found_and_reports_progress():
    """A limit long enough for the fill but not for everything: a checked subset comes back
    (status by its certified gap, or time_limit), and every phase that ran reported."""
    from gdo_opt.testing.instances import make_hard_instance

    inst = make_hard_instance(50_000, seed=1)
    events = []
    sel = inst.problem.solve("greedy", time_limit=0.6, mip_gap=1e-12, progress=events.append)
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "done" and "greedy" in names
    greedy = next(e for e in events if e["event"] == "greedy")
    if greedy["rows_left"] == 0:  # the fill (or its quick refill) was feasible: it is not dropped
        assert sel.indices.size == inst.k, sel.message
    if sel.indices.size:
        assert inst.problem.check(sel.indices) == []
        assert sel.status in ("feasible", "time_limit") and np.isfinite(sel.gap)
    else:
        assert sel.status == "time_limit"


def test_refined_quick_refill_is_feasible_and_no_worse():
    """The quick refill's bisection keeps a factor that holds: still feasible, and a smaller
    price factor never gives a lower value on the hard family."""
    from gdo_opt.solvers.greedy.backend import _escalate, priced_order
    from gdo_opt.solvers.greedy.lagrange import Lagrangian
    from gdo_opt.solvers.greedy.neighborhood import violated_rows

    from gdo_opt.testing.instances import make_hard_instance

    p = make_hard_instance(50_000, seed=0).problem
    form = p.standard_form()
    lag = Lagrangian(p, form)
    order, _ = priced_order(p, lag)
    g = Greedy(p, order=order)
    g.fill()
    bad = violated_rows(form, g.x)
    assert bad.size  # the first fill misses the covering row here
    plain_info, refined_info = {}, {}
    plain = _escalate(g, form, lag, bad, None, plain_info)
    refined = _escalate(g, form, lag, bad, None, refined_info, refine=2)
    assert plain is not None and refined is not None
    assert violated_rows(form, refined).size == 0 and p.check(np.flatnonzero(refined)) == []
    assert refined_info["escalated_factor"] <= plain_info["escalated_factor"]
    assert p.objective(np.flatnonzero(refined)) >= p.objective(np.flatnonzero(plain)) - 1e-9
