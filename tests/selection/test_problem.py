"""SelectionProblem: building, checking, exact backends against brute force, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from gdo_opt.solvers import BaseBackend, RawResult

from gdo_opt import SelectionProblem
from gdo_opt.testing.oracle import Description, brute_force

EXACT = ["highs", "cpsat", "cvxpy"]


def random_problem(n: int, seed: int) -> Description:
    """A tiny instance with every constraint family (quotas, caps, dedup, shares, linear)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, max(3, n // 2)))
    d = Description(np.round(rng.normal(size=n), 3), budget=(k - 1, k + 1))
    strata = rng.choice(["a", "b", "c"], size=n)
    d.add("group", "stratum", labels=strata, lo={"a": 1}, hi={"b": 2, "c": 3})
    videos = np.where(rng.random(n) < 0.6, rng.integers(0, 3, n), -1)
    d.add("cap", "per_video", labels=videos, at_most=2)
    dedup = np.where(rng.random(n) < 0.4, rng.integers(0, 3, n), -1)
    d.add("exclusive", "dedup", labels=dedup)
    video = videos >= 0
    d.add("share", "video_share", mask=video, lo=0.25, hi=0.75)
    temporal = video & (rng.random(n) < 0.5)
    d.add("share", "temporal_share", mask=temporal, lo=0.3, of=video)
    d.add("linear", "cost", coef=rng.integers(0, 3, size=n), hi=2 * k)
    return d


@pytest.mark.parametrize("seed", range(25))
def test_exact_backends_match_brute_force(seed):
    desc = random_problem(12, seed)
    p = desc.problem()
    optimum, _ = brute_force(desc)
    for solver in EXACT:
        sel = p.solve(solver=solver, mip_gap=0)
        if optimum is None:
            assert sel.status == "infeasible", (solver, sel)
            assert sel.message
        else:
            assert sel.status == "optimal", (solver, sel.message)
            assert p.check(sel.indices) == []
            assert sel.objective == pytest.approx(optimum, abs=1e-6), solver
            assert sel.bound >= optimum - 1e-6
            assert sel.gap <= 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_highs_and_cpsat_agree_on_larger_instances(seed):
    rng = np.random.default_rng(100 + seed)
    n = 400
    p = SelectionProblem(rng.gamma(2.0, size=n), budget=40)
    p.add_group_bounds(rng.integers(0, 8, n), lo=2, hi=8, name="stratum")
    p.add_cap(rng.integers(0, 60, n), at_most=2, name="per_video")
    p.add_exclusive(np.where(rng.random(n) < 0.1, rng.integers(0, 15, n), -1), name="dedup")
    p.add_share(rng.random(n) < 0.5, lo=0.4, hi=0.55, name="video_share")
    a, b = p.solve("highs", mip_gap=0), p.solve("cpsat", mip_gap=0)
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective, rel=1e-7)


def test_check_reports_each_kind_of_violation():
    p = SelectionProblem(np.ones(6), budget=(2, 3))
    p.add_group_bounds(["a", "a", "b", "b", "c", "c"], lo={"c": 1}, hi={"a": 1}, name="stratum")
    p.add_cap([1, 1, 1, 2, 2, None], at_most=1, name="per_video")
    p.add_exclusive(["d", "d", "", "", "", ""], name="dedup")
    p.add_share([True, True, False, False, False, False], hi=0.4, name="share")
    p.add_linear([1, 0, 0, 0, 0, 0], lo=1, name="must_take_first")
    found = {(v.name, v.group) for v in p.check([0, 1, 2, 3])}
    assert found == {
        ("budget", None),
        ("stratum", "a"),
        ("stratum", "c"),
        ("per_video", 1),
        ("dedup", "d"),
        ("share", None),
    }
    assert {v.name for v in p.check([2, 3])} == {"stratum", "must_take_first"}
    assert p.check([0, 3, 5]) == []


def test_labels_none_empty_and_minus_one_mean_no_group():
    p = SelectionProblem(np.arange(5, dtype=float), budget=3)
    fam = p.add_exclusive([None, "", -1, np.nan, "x"], name="dedup")
    assert fam.codes.tolist() == [-1, -1, -1, -1, 0]
    ints = p.add_cap(np.array([-1, -1, 3, 3, 3]), at_most=1, name="cap")
    assert ints.codes.tolist() == [-1, -1, 0, 0, 0]
    assert p.solve("highs").indices.tolist() == [0, 1, 4]


def test_redundant_group_rows_are_dropped():
    p = SelectionProblem(np.ones(10), budget=3)
    p.add_cap(np.repeat(np.arange(5), 2), at_most=2, name="never_binds")
    p.add_exclusive(np.arange(10), name="singletons")
    assert p.standard_form().A.shape[0] == 1  # only the budget row


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: SelectionProblem([1.0, np.nan], budget=1), "non-finite"),
        (lambda: SelectionProblem([1.0, 2.0], budget=(2, 1)), "lo > hi"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1.5), "integral"),
        (lambda: SelectionProblem([[1.0]], budget=1), "1-D"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_cap([1], at_most=1), "expected"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_cap([1, 2], at_most=-1), "negative"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_group_bounds([1, 2], lo=3, hi=2), "lo > hi"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_share([1, 0], lo=0.7, hi=0.2), "lo > hi"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_share([1, 0], lo=1.5), "share in"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_share([1, 1], of=[1, 0]), "subset"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_linear([1, 2, 3], hi=1), "columns"),
        (lambda: SelectionProblem([1.0, 2.0], budget=1).add_linear([1, 2]), "lo, hi"),
    ],
)
def test_bad_arguments_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_duplicate_constraint_names_are_rejected():
    p = SelectionProblem([1.0, 2.0], budget=1)
    p.add_cap([1, 1], at_most=1, name="per_video")
    with pytest.raises(ValueError, match="already used"):
        p.add_exclusive([1, 1], name="per_video")


@pytest.mark.parametrize("solver", EXACT)
def test_infeasible_share_names_the_constraint_and_numbers(solver):
    n = 200
    video = np.arange(n) < 60
    p = SelectionProblem(np.ones(n), budget=100)
    p.add_share(video, lo=0.5, name="video_share")
    p.add_cap(np.where(video, np.arange(n) // 10, -1), at_most=4, name="per_video")
    sel = p.solve(solver=solver)
    assert sel.status == "infeasible"
    assert "video_share needs ≥ 50 of 100" in sel.message
    assert "only 24" in sel.message and "per_video" in sel.message


def test_infeasible_floor_larger_than_group():
    p = SelectionProblem(np.ones(6), budget=3)
    p.add_group_bounds(["a", "a", "b", "b", "b", "b"], lo={"a": 3}, name="stratum")
    sel = p.solve("highs")
    assert sel.status == "infeasible"
    assert "stratum['a'] needs ≥ 3 but only 2" in sel.message


def test_floor_on_a_label_no_candidate_has_is_infeasible_not_ignored():
    p = SelectionProblem([1.0, 2.0], budget=1)
    p.add_group_bounds(["a", "b"], lo={"z": 1}, hi={"a": 1}, name="stratum")
    sel = p.solve("highs")
    assert sel.status == "infeasible" and "stratum['z'] needs ≥ 1 but only 0" in sel.message


def test_infeasible_interaction_found_by_deletion_filter():
    # Each constraint alone is satisfiable; together they are not.
    n = 10
    p = SelectionProblem(np.ones(n), budget=4)
    first = np.arange(n) < 5
    p.add_linear(first.astype(float), lo=4, name="four_from_first_half")
    p.add_linear((~first).astype(float), lo=1, name="one_from_second_half")
    sel = p.solve("highs")
    assert sel.status == "infeasible"
    assert "four_from_first_half" in sel.message and "one_from_second_half" in sel.message


def test_to_cvxpy_accepts_user_constraints():
    cp = pytest.importorskip("cvxpy")
    p = SelectionProblem([5.0, 4.0, 3.0, 2.0], budget=2)
    x, objective, constraints = p.to_cvxpy()
    constraints.append(x[0] + x[1] <= 1)  # a row gdo-opt does not model
    problem = cp.Problem(objective, constraints)
    problem.solve(solver="HIGHS")
    assert np.flatnonzero(x.value > 0.5).tolist() == [0, 2]
    assert problem.value == pytest.approx(8.0)


def test_sparse_linear_rows_and_constraint_table():
    p = SelectionProblem([3.0, 2.0, 1.0, 1.0], budget=2)
    p.add_linear(sp.csr_matrix(np.array([[1.0, 1.0, 0, 0], [0, 0, 1.0, 1.0]])), hi=[1, 1], name="pairs")
    sel = p.solve("highs")
    assert sel.indices.tolist() in ([0, 2], [0, 3])
    table = p.constraint_table(sel.indices)
    assert table[0]["name"] == "budget" and table[0]["binding"]
    assert [row["achieved"] for row in table if row["name"] == "pairs"] == [1.0, 1.0]
    assert not any(row["violated"] for row in table)


class _Broken(BaseBackend):
    """Claims optimality for a subset that breaks the budget."""

    name = "broken"

    def solve(self, problem, options):
        return RawResult("optimal", np.array([0, 1]), bound=5.0)


def test_backend_answer_that_violates_is_reported_as_error():
    p = SelectionProblem([3.0, 2.0, 1.0], budget=1)
    sel = p.solve(_Broken())
    assert sel.status == "error" and sel.indices.size == 0  # a violating subset is never returned
    assert "violating 1 constraint" in sel.message and "budget" in sel.message


def test_unknown_solver_is_a_value_error():
    with pytest.raises(ValueError, match="unknown solver"):
        SelectionProblem([1.0], budget=1).solve("nope")


def test_building_is_vectorized_and_fast_enough_for_large_pools():
    # Not a timing test: checks that 200k candidates with thousands of groups build and check.
    rng = np.random.default_rng(0)
    n = 200_000
    p = SelectionProblem(rng.random(n), budget=3000)
    p.add_group_bounds(rng.integers(0, 2000, n), lo=0, hi=3, name="stratum")
    p.add_cap(rng.integers(0, n // 24, n), at_most=8, name="per_video")
    p.add_share(rng.random(n) < 0.5, lo=0.4, hi=0.55, name="video_share")
    form = p.standard_form()
    assert form.A.shape[1] == n and form.A.shape[0] > 2000
    assert len(p.check(np.arange(3000))) > 0


def test_categorical_labels_keep_their_names():
    import pandas as pd

    labels = pd.Categorical.from_codes([0, 0, 1, 2, 2], categories=["a", "b", ""])
    p = SelectionProblem([5.0, 4.0, 3.0, 2.0, 1.0], budget=2)
    fam = p.add_group_bounds(labels, lo={"b": 1}, hi={"a": 1}, name="stratum")
    assert fam.codes.tolist() == [0, 0, 1, -1, -1]  # the "" category means "no group"
    sel = p.solve("highs")
    assert sel.indices.tolist() == [0, 2]
    assert {row["group"] for row in p.constraint_table(sel.indices) if row["name"] == "stratum"} >= {"a", "b"}
