"""auto == an independent exact optimum: brute force on tiny instances, HiGHS on mid-size ones
(with the core + pricing path forced), and CP-SAT as a second exact solver."""

from __future__ import annotations

import numpy as np
import pytest

from gdo_opt.selection.problem import SelectionProblem
from gdo_opt.testing.instances import make_instance, random_small_instance
from gdo_opt.testing.oracle import brute_force


@pytest.mark.parametrize("seed", range(40))
def test_exact_solvers_match_brute_force(seed):
    desc = random_small_instance(100 + seed)
    problem = desc.problem()
    optimum, _ = brute_force(desc)
    for solver, extra in (("highs", {}), ("auto", {}), ("auto", {"force_core": True}), ("cpsat", {})):
        sel = problem.solve(solver, **extra)
        if optimum is None:
            assert sel.status == "infeasible", (solver, sel.message)
            assert sel.message
            continue
        assert sel.status in ("optimal", "feasible"), (solver, sel.message)
        assert problem.check(sel.indices) == []
        assert sel.objective == pytest.approx(optimum, abs=1e-6), solver
        assert sel.bound >= optimum - 1e-6, solver


@pytest.mark.parametrize("seed,n,preset", [(0, 4_000, "notes"), (1, 8_000, "temp_plus"), (2, 12_000, "minloss"),
                                           (3, 6_000, "diverse"), (4, 20_000, "temp")])
def test_core_path_equals_highs(seed, n, preset):
    problem = make_instance(n, seed=seed, preset=preset).problem
    exact = problem.solve("highs", mip_gap=1e-9)
    sel = problem.solve("auto", force_core=True, mip_gap=1e-9)
    assert sel.status == "optimal", sel.message
    assert problem.check(sel.indices) == []
    assert sel.objective == pytest.approx(exact.objective, rel=1e-9)
    assert sel.bound >= exact.objective - 1e-6
    assert sel.info["path"] == "core" and "pricing" in sel.message


@pytest.mark.parametrize("seed,preset", [(5, "notes"), (6, "temp_plus"), (7, "minloss"), (8, "diverse")])
def test_auto_takes_the_direct_path_on_small_models(seed, preset):
    """Small models: the LP relaxation first (kept only when integral, checked and within mip_gap
    of its certified bound), else the MIP; either way the optimum HiGHS's MIP finds."""
    problem = make_instance(2_000, seed=seed, preset=preset).problem
    exact = problem.solve("highs", mip_gap=1e-9)
    sel = problem.solve("auto", mip_gap=1e-9)
    assert sel.info["path"] in ("direct-lp", "direct"), sel.message
    assert sel.status == "optimal" and problem.check(sel.indices) == []
    assert sel.objective == pytest.approx(exact.objective, rel=1e-9)
    assert sel.bound >= exact.objective - 1e-6
    mip = problem.solve("auto", lp_first=False)
    assert mip.info["path"] == "direct" and "direct HiGHS" in mip.message


def test_auto_lp_first_on_an_integral_lp_skips_the_mip():
    """A cardinality problem with disjoint group caps has an integral LP: no MIP runs."""
    rng = np.random.default_rng(3)
    problem = SelectionProblem(rng.random(300), budget=40)
    problem.add_cap(rng.integers(0, 30, 300), at_most=2)
    sel = problem.solve("auto")
    assert sel.info["path"] == "direct-lp" and "LP relaxation integral" in sel.message
    assert sel.objective == pytest.approx(problem.solve("highs", mip_gap=1e-9).objective, rel=1e-9)
    assert sel.bound >= sel.objective - 1e-9


def test_auto_lp_first_falls_back_to_the_mip_when_the_lp_is_fractional():
    """An odd cycle of pairwise exclusions: the LP takes half of each item (1.5), the MIP one (1)."""
    problem = SelectionProblem(np.ones(3), budget=(0, 3))
    problem.add_exclusive(["a", "a", None], name="x12")
    problem.add_exclusive([None, "b", "b"], name="x23")
    problem.add_exclusive(["c", None, "c"], name="x13")
    sel = problem.solve("auto")
    assert sel.info["path"] == "direct" and sel.objective == 1 and sel.status == "optimal"
    assert sel.bound == pytest.approx(1.0)


def test_highs_and_cpsat_agree_on_gdo_instances():
    problem = make_instance(1_500, seed=9, preset="temp").problem
    a = problem.solve("highs", mip_gap=1e-9)
    b = problem.solve("cpsat", mip_gap=1e-9, time_limit=60)
    assert b.objective == pytest.approx(a.objective, abs=problem.budget_hi / 1e9 + 1e-6)


def test_infeasible_core_problem_reports_the_constraint():
    n = 50_000
    rng = np.random.default_rng(0)
    p = SelectionProblem(rng.normal(size=n), 100)
    labels = rng.integers(0, 5, n)
    p.add_group_bounds(labels, lo={0: 60, 1: 60}, name="quota")
    sel = p.solve("auto", force_core=True)
    assert sel.status == "infeasible"
    assert "quota" in sel.message


def test_time_limit_is_respected_end_to_end():
    problem = make_instance(30_000, seed=2).problem
    sel = problem.solve("auto", force_core=True, time_limit=20)
    assert sel.seconds < 40
    assert sel.status in ("optimal", "feasible")


@pytest.mark.parametrize("preset,path", [("notes", "MIP skipped"), ("diverse", "support MIP")])
def test_both_core_endings_are_certified(preset, path):
    """notes: the LP-guided greedy is within mip_gap of the pool bound, so no MIP; diverse: it is
    not, so the MIP on the LP's support runs (and, if still needed, the reduced-cost-fixed core's). Both must match HiGHS on the full pool."""
    problem = make_instance(20_000, seed=11, preset=preset).problem
    exact = problem.solve("highs", mip_gap=1e-9)
    sel = problem.solve("auto", force_core=True, mip_gap=1e-4)
    assert path in sel.message
    assert problem.check(sel.indices) == []
    assert sel.bound >= exact.objective - 1e-6
    assert sel.objective >= exact.objective - 1e-4 * abs(sel.bound)
    assert sel.gap <= 1e-4 and sel.status == "optimal"


@pytest.fixture(scope="module")
def hard_20k():
    """A hard-family problem and a feasible value of it (every valid bound lies above it)."""
    from gdo_opt.testing.instances import make_hard_instance

    problem = make_hard_instance(20_000, seed=2).problem
    reference = problem.solve("auto", force_core=True, mip_gap=1e-3)
    assert problem.check(reference.indices) == []
    return problem, reference.objective


@pytest.mark.parametrize("limit", [0.05, 0.5, 2.0])
def test_tiny_time_limits_return_a_checked_answer_or_a_clear_status(hard_20k, limit):
    """Behaviour, not speed: whatever phase the limit hits, the answer is a feasible subset with a
    valid bound, or no subset with status time_limit; never a hang past the limit's slack."""
    problem, feasible_value = hard_20k
    sel = problem.solve("auto", force_core=True, time_limit=limit, mip_gap=1e-9)
    assert sel.seconds < limit + 15
    assert sel.status in ("optimal", "feasible", "time_limit"), sel.message
    if sel.indices is not None and len(sel.indices):
        assert problem.check(sel.indices) == []
    if np.isfinite(sel.bound):
        assert sel.bound >= feasible_value - 1e-9 * abs(feasible_value)


def test_statuses_follow_the_requested_gap():
    from gdo_opt.testing.instances import make_hard_instance

    problem = make_hard_instance(20_000, seed=4).problem
    loose = problem.solve("auto", force_core=True, mip_gap=1e-2)
    assert loose.status == "optimal" and loose.gap <= 1e-2
    tight = problem.solve("auto", force_core=True, mip_gap=0.0, time_limit=3)
    # mip_gap 0: optimal only with a zero relative gap or an absolute gap ≤ 1e-6 (ABS_GAP_TOL)
    assert (tight.status == "optimal") == (tight.gap <= 0.0 or tight.bound - tight.objective <= 1e-6)
    if tight.status != "optimal":
        assert tight.status in ("feasible", "time_limit") and tight.gap > 0


@pytest.mark.parametrize("limit", [0.3, 1.0])
def test_time_limit_keeps_the_quick_greedy_subset(hard_20k, limit):
    """Under a time limit the core path first secures a feasible subset (the quick greedy); once
    it has one it never ends without a subset, and its bound (LP or the quick greedy's
    Lagrangian) stays valid. Progress events still come, in order."""
    problem, feasible_value = hard_20k
    events = []
    sel = problem.solve("auto", force_core=True, time_limit=limit, mip_gap=1e-12, progress=events.append)
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "done" and "quick greedy" in names
    quick = next(e for e in events if e["event"] == "quick greedy")
    if np.isfinite(quick["objective"]):
        assert len(sel.indices) == problem.budget_hi and problem.check(sel.indices) == [], sel.message
        assert sel.objective >= quick["objective"] - 1e-9
        assert np.isfinite(sel.bound) and sel.bound >= feasible_value - 1e-9 * abs(feasible_value)
    assert sel.status in ("optimal", "feasible", "time_limit"), sel.message
