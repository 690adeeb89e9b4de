"""The pricing loop: its final bound equals the full LP optimum, from any starting core, and the
Lagrangian bound L(y) is valid for every dual vector of the right signs."""

from __future__ import annotations

import numpy as np
import pytest
from gdo_opt.solvers import pricing
from gdo_opt.solvers.highs import solve_lp

from gdo_opt.testing.instances import make_instance


def full_lp(problem):
    form = problem.standard_form()
    return solve_lp(form.c, form.A, form.row_lo, form.row_hi)


@pytest.mark.parametrize("seed,preset", [(0, "notes"), (1, "temp_plus"), (2, "minloss"), (3, "diverse")])
def test_pricing_bound_equals_full_lp(seed, preset):
    problem = make_instance(15_000, seed=seed, preset=preset).problem
    lp = full_lp(problem)
    core = pricing.initial_core(problem)
    result = pricing.price(problem, core)
    assert result.status == "optimal"
    assert result.bound == pytest.approx(lp.objective, abs=1e-6 * max(1.0, abs(lp.objective)))
    assert result.core.size < problem.n  # the core stayed a strict subset


def test_pricing_adds_columns_from_a_poor_core():
    problem = make_instance(10_000, seed=4).problem
    lp = full_lp(problem)
    order = np.argsort(-problem.scores, kind="stable")
    core = order[: problem.budget_hi * 2]  # top scores only: floors force growth and pricing
    result = pricing.price(problem, core, add_cap=200)
    assert result.status == "optimal"
    assert len(result.iterations) >= 2
    assert sum(it["added"] for it in result.iterations) > 0
    assert result.bound == pytest.approx(lp.objective, abs=1e-6 * max(1.0, abs(lp.objective)))
    assert (result.reduced[np.setdiff1d(np.arange(problem.n), result.core)] <= 1e-6).all()


def test_lagrangian_bound_is_valid_for_any_signed_duals():
    problem = make_instance(5_000, seed=6).problem
    lp = full_lp(problem)
    pricer = pricing.Pricer(problem)
    value, d = pricer.lagrangian(lp.row_dual)
    assert value == pytest.approx(lp.objective, rel=1e-9)
    assert np.allclose(d, lp.col_dual, atol=1e-7)  # HiGHS's col_dual is c − Aᵀy
    rng = np.random.default_rng(0)
    form = pricer.form
    for _ in range(5):
        y = lp.row_dual * rng.uniform(0.0, 2.0, lp.row_dual.size)
        y[~np.isfinite(form.row_hi) & (y > 0)] = 0
        y[~np.isfinite(form.row_lo) & (y < 0)] = 0
        assert pricer.lagrangian(y)[0] >= lp.objective - 1e-7
    assert pricer.lagrangian(-np.abs(lp.row_dual) - 1)[0] == np.inf  # wrong signs: no bound


def test_pricing_result_on_core_reaches_direct_mip_optimum():
    problem = make_instance(9_000, seed=8, preset="temp").problem
    direct = problem.solve("highs", mip_gap=1e-9)
    sel = problem.solve("auto", force_core=True, mip_gap=1e-9)
    assert sel.objective == pytest.approx(direct.objective, rel=1e-10)
    assert np.array_equal(np.sort(sel.indices), np.sort(direct.indices)) or sel.objective == pytest.approx(
        direct.objective, rel=1e-12
    )


@pytest.mark.parametrize("method", ["simplex", "ipm", "ipm-nocrossover"])
def test_every_first_lp_method_reaches_the_full_lp_on_the_hard_family(method):
    """Knapsack + covering rows: the covering floor starts on its artificial column, pricing pulls
    in the columns it needs; the interior point without crossover still gives a valid bound."""
    from gdo_opt.testing.instances import make_hard_instance

    problem = make_hard_instance(20_000, seed=3).problem
    lp = full_lp(problem)
    core = np.argsort(-problem.scores, kind="stable")[: problem.budget_hi]  # misses the covering row
    result = pricing.price(problem, core, method=method, add_cap=500)
    assert result.status == "optimal", result.message
    assert result.bound >= lp.objective - 1e-6 * abs(lp.objective)
    assert result.bound == pytest.approx(lp.objective, rel=1e-6)
    assert result.iterations[0]["artificial"] > 0 and result.iterations[-1]["artificial"] <= pricing.ART_TOL


def test_pricing_cut_short_still_returns_a_valid_bound():
    from gdo_opt.testing.instances import make_hard_instance

    problem = make_hard_instance(20_000, seed=5).problem
    lp = full_lp(problem)
    core = np.argsort(-problem.scores, kind="stable")[: problem.budget_hi]
    for rounds in (1, 2, 3):
        result = pricing.price(problem, core, max_rounds=rounds, add_cap=100)
        assert result.status == "stopped" and len(result.iterations) == rounds
        assert result.bound >= lp.objective - 1e-6 * abs(lp.objective)  # looser, never below
        assert result.reduced is not None


def test_signed_duals_keep_the_bound_valid():
    problem = make_instance(5_000, seed=7).problem
    lp = full_lp(problem)
    pricer = pricing.Pricer(problem)
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.normal(0.0, 1.0, lp.row_dual.size)  # arbitrary signs: clipped, never invalid
        value, _ = pricer.lagrangian(pricer.signed(y))
        assert value >= lp.objective - 1e-7


def test_effective_budget_reads_a_count_row():
    from gdo_opt.selection.problem import SelectionProblem

    n = 1_000
    p = SelectionProblem(np.linspace(1.0, 2.0, n), budget=(0, n))
    p.add_group_bounds(np.full(n, "all", dtype=object), lo={"all": 50}, hi={"all": 50}, name="size_k")
    assert pricing.effective_budget(p, p.standard_form()) == 50
    assert pricing.initial_core(p).size < n


def test_a_stalled_simplex_hands_over_to_the_interior_point():
    """stall_s ≈ 0: every simplex round is cut at once; the IPM without crossover takes over and
    its duals still reach the full LP's value."""
    from gdo_opt.testing.instances import make_hard_instance

    problem = make_hard_instance(20_000, seed=6).problem
    lp = full_lp(problem)
    core = pricing.initial_core(problem)
    result = pricing.price(problem, core, method="simplex", stall_s=1e-4)
    assert result.status == "optimal", result.message
    assert {it["method"] for it in result.iterations} == {"ipm"}
    assert result.bound >= lp.objective - 1e-6 * abs(lp.objective)
    assert result.bound == pytest.approx(lp.objective, rel=1e-6)
