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
