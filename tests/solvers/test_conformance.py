"""One conformance suite for every registered backend, a user-registered one included.

The reference is ``gdo_opt.testing.oracle``: a brute force over the instance's own description
(raw labels, masks and coefficient rows), sharing no code with the families or the standard form
the backends read. Every backend must: return a subset the oracle accepts, never a bound below
the true optimum, the optimum itself when exact, one status rule, and reject unknown options.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from gdo_opt.solvers import (
    BaseBackend,
    RawResult,
    SolveOptions,
    Status,
    backend_names,
    get_backend,
    register_backend,
    unregister_backend,
)

from gdo_opt.errors import FrozenProblemError, SolverOptionError
from gdo_opt.testing.instances import hard_small_instance, make_instance, random_small_instance
from gdo_opt.testing.oracle import Description, brute_force, is_feasible

BUILTIN = ["auto", "highs", "cpsat", "greedy", "cvxpy"]
EXACT = {"auto", "highs", "cpsat", "cvxpy", "toy"}


class ToyBackend(BaseBackend):
    """A user's backend: exhaustive search over the standard form (tiny problems only)."""

    name = "toy"

    def solve(self, problem, options: SolveOptions) -> RawResult:
        form = problem.standard_form()
        A = form.A.toarray()
        best, best_x = -math.inf, None
        for bits in itertools.product((0.0, 1.0), repeat=problem.n):
            x = np.array(bits)
            act = A @ x
            if (act >= form.row_lo - 1e-9).all() and (act <= form.row_hi + 1e-9).all() and form.c @ x > best:
                best, best_x = float(form.c @ x), x
        if best_x is None:
            return RawResult(Status.INFEASIBLE)
        return RawResult(Status.OPTIMAL, np.flatnonzero(best_x), bound=best, message="toy: exhaustive")


@pytest.fixture(scope="module", autouse=True)
def toy_registered():
    register_backend(ToyBackend)
    yield
    unregister_backend("toy")


def all_backends() -> list[str]:
    return [*BUILTIN, "toy"]


def fractional_instance(seed: int) -> Description:
    """Shares and rows that are not short decimals (1/3, 2/7): CP-SAT cannot scale them exactly."""
    rng = np.random.default_rng(seed)
    n = 10
    d = Description(rng.gamma(2.0, size=n), budget=(3, 6))
    d.add("share", "third", mask=rng.random(n) < 0.5, lo=1 / 3, hi=2 / 3)
    d.add("linear", "weight", coef=rng.uniform(0.1, 1.0, n) / 7, hi=float(rng.uniform(0.3, 0.6)))
    d.add("cap", "per_video", labels=rng.integers(0, 4, n), at_most=2)
    return d


# "hard": the hard family (knapsack + covering rows, tight quotas, caps, dedup, shares) at N = 14-18
INSTANCES = ([("small", s) for s in range(12)] + [("fractional", s) for s in range(4)]
             + [("hard", s) for s in range(10)])


def describe(kind: str, seed: int) -> Description:
    if kind == "hard":
        return hard_small_instance(seed)
    return random_small_instance(300 + seed, n=10) if kind == "small" else fractional_instance(seed)


@pytest.fixture(scope="module")
def oracle_cache():
    return {}


@pytest.mark.parametrize("solver", all_backends())
@pytest.mark.parametrize("kind,seed", INSTANCES)
def test_backend_matches_the_oracle(solver, kind, seed, oracle_cache):
    desc = describe(kind, seed)
    if (kind, seed) not in oracle_cache:
        oracle_cache[(kind, seed)] = brute_force(desc)
    optimum, _ = oracle_cache[(kind, seed)]
    problem = desc.problem()
    sel = problem.solve(solver, mip_gap=0)
    assert isinstance(sel.status, Status) and sel.solver == solver
    if optimum is None:
        assert sel.status == Status.INFEASIBLE, (solver, sel.message)
        assert sel.message and sel.indices.size == 0
        return
    assert sel.status in (Status.OPTIMAL, Status.FEASIBLE), (solver, sel.status, sel.message)
    assert is_feasible(desc, sel.indices), (solver, sel.indices)  # the oracle's own check
    assert sel.objective == pytest.approx(float(np.sum(desc.scores[sel.indices])), abs=1e-9)
    assert sel.objective <= optimum + 1e-9
    if math.isfinite(sel.bound):
        assert sel.bound >= optimum - 1e-6, (solver, sel.bound, optimum)  # a bound is never wrong
        assert sel.gap == pytest.approx(max(0.0, sel.bound - sel.objective) / max(1.0, abs(sel.bound)))
    # one status rule: optimal exactly when the certified gap is within mip_gap (or ≤ 1e-6 absolute)
    certified = math.isfinite(sel.bound) and sel.bound - sel.objective <= 1e-6
    assert (sel.status == Status.OPTIMAL) == certified, (solver, sel)
    if solver in EXACT:
        assert sel.status == Status.OPTIMAL, (solver, sel.message)
        assert sel.objective == pytest.approx(optimum, abs=1e-6)


def test_cpsat_never_approximates_a_row_it_cannot_scale():
    desc = fractional_instance(0)
    sel = desc.problem().solve("cpsat", mip_gap=0)
    assert "solved with HiGHS instead" in sel.message and sel.info.get("fallback") == "highs"
    strict = desc.problem().solve("cpsat", fallback=False)
    assert strict.status == Status.ERROR and "cannot hold" in strict.message


def test_cpsat_scales_decimals_exactly():
    desc = random_small_instance(7, n=10)
    sel = desc.problem().solve("cpsat", mip_gap=0)
    if sel.status == Status.OPTIMAL:
        assert "exactly" in sel.message and sel.info["scaling_error_bound"] == 0.0


@pytest.mark.parametrize("solver", all_backends())
def test_unknown_and_bad_options_are_rejected(solver):
    problem = random_small_instance(1, n=8).problem()
    with pytest.raises(SolverOptionError, match="boundd"):
        problem.solve(solver, boundd=False)
    for key, value in (("time_limit", -1), ("time_limit", float("nan")), ("mip_gap", -1),
                       ("mip_gap", float("nan")), ("mip_gap", 1.5), ("seed", -3), ("threads", 0)):
        with pytest.raises(SolverOptionError, match=key):
            problem.solve(solver, **{key: value})


def test_option_misspelling_names_the_closest_option():
    with pytest.raises(SolverOptionError, match="did you mean 'bound'"):
        get_backend("greedy").options(boundd=False)
    with pytest.raises(SolverOptionError, match="must be True or False"):
        get_backend("greedy").options(bound="no")


@pytest.mark.parametrize("solver", BUILTIN)
def test_time_limit_returns_promptly_with_a_checked_answer(solver):
    inst = make_instance(3_000, seed=3, preset="diverse")
    start = time.perf_counter()
    sel = inst.problem.solve(solver, time_limit=0.5, mip_gap=0)
    wall = time.perf_counter() - start
    assert wall < 0.5 + 10, (solver, wall)
    assert sel.status in (Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT), (solver, sel.message)
    if sel.indices.size:
        assert inst.problem.check(sel.indices) == []
    if sel.status == Status.TIME_LIMIT:
        assert "time limit" in sel.message


def test_registry_lists_builtins_and_the_user_backend():
    names = backend_names()
    assert names[: len(BUILTIN)] == BUILTIN and "toy" in names
    with pytest.raises(SolverOptionError, match="already registered"):
        register_backend(ToyBackend)
    with pytest.raises(SolverOptionError, match="did you mean 'highs'"):
        get_backend("higs")


def test_a_backend_instance_can_be_passed_directly():
    problem = random_small_instance(2, n=8).problem()
    optimum, _ = brute_force(random_small_instance(2, n=8))
    sel = problem.solve(ToyBackend())
    if optimum is not None:
        assert sel.objective == pytest.approx(optimum)


class _Scripted(BaseBackend):
    """Returns whatever RawResult it was given: exercises the post-processing rules."""

    name = "scripted"

    def __init__(self, raw):
        self.raw = raw

    def solve(self, problem, options):
        return self.raw


def test_post_processing_rules():
    from gdo_opt.selection.problem import SelectionProblem

    p = SelectionProblem([3.0, 2.0, 1.0], budget=1)
    # a bound below the subset's value cannot be valid: withheld, never reported
    sel = p.solve(_Scripted(RawResult("optimal", [0], bound=1.0)))
    assert math.isnan(sel.bound) and "withheld" in sel.message and sel.status == Status.FEASIBLE
    # "optimal" from a backend whose gap exceeds mip_gap becomes "feasible"
    sel = p.copy().solve(_Scripted(RawResult("optimal", [1], bound=3.0)), mip_gap=1e-4)
    assert sel.status == Status.FEASIBLE and sel.gap == pytest.approx(1 / 3)
    # "feasible" within mip_gap is "optimal" (greedy and auto agree on a gap-0 answer)
    sel = p.copy().solve(_Scripted(RawResult("feasible", [0], bound=3.0)))
    assert sel.status == Status.OPTIMAL
    # a time-limited incumbent that breaks a row is dropped: time_limit, no subset
    sel = p.copy().solve(_Scripted(RawResult("time_limit", [0, 1], bound=5.0)), time_limit=1)
    assert sel.status == Status.TIME_LIMIT and sel.indices.size == 0 and "violates" in sel.message
    # a time-limited feasible incumbent is kept with its gap
    sel = p.copy().solve(_Scripted(RawResult("time_limit", [1], bound=3.0)), time_limit=1)
    assert sel.status == Status.TIME_LIMIT and sel.indices.tolist() == [1] and sel.has_selection
    # invalid indices from a backend are an error, not truncated
    sel = p.copy().solve(_Scripted(RawResult("optimal", [0.5], bound=3.0)))
    assert sel.status == Status.ERROR and "indices" in sel.message


def test_problem_is_frozen_after_solve_and_copies_are_editable():
    from gdo_opt.selection.problem import SelectionProblem

    p = SelectionProblem([3.0, 2.0, 1.0], budget=2)
    p.solve("highs")
    with pytest.raises(FrozenProblemError):
        p.add_exclusive(["a", "a", None])
    q = p.copy()
    q.add_exclusive(["a", "a", None], name="dedup")
    assert q.solve("highs").indices.tolist() == [0, 2]
    assert p.solve("highs").indices.tolist() == [0, 1]


@pytest.mark.parametrize("budget, match", [
    (None, "budget"), (float("nan"), "integral"), ("3", "integral"), ((1, 2, 3), "pair"), (2.5, "integral"),
])
def test_budget_arguments(budget, match):
    from gdo_opt.selection.problem import SelectionProblem

    with pytest.raises(ValueError, match=match):
        SelectionProblem([1.0, 2.0, 3.0], budget)


def test_budget_as_array_and_check_rejects_fractional_indices():
    from gdo_opt.selection.problem import SelectionProblem

    p = SelectionProblem([1.0, 2.0, 3.0], np.array([1, 2]))
    assert (p.budget_lo, p.budget_hi) == (1, 2)
    with pytest.raises(ValueError, match="indices"):
        p.check([1.5])
    with pytest.raises(ValueError, match="indices"):
        p.check([True, False, True])
    with pytest.raises(ValueError, match="coef"):
        p.add_linear([1e300, 1.0, 1.0], hi=1.0)
    with pytest.raises(ValueError, match="scores"):
        SelectionProblem([1e300, 1.0], 1)


def test_status_is_a_string_enum():
    assert Status.TIME_LIMIT == "time_limit" and str(Status.OPTIMAL) == "optimal"
    assert f"{Status.FEASIBLE}" == "feasible"


def test_infeasibility_explanation_never_claims_what_an_unfinished_lp_did_not_prove(monkeypatch):
    from gdo_opt.solvers import highs

    from gdo_opt.selection import diagnose
    from gdo_opt.selection.problem import SelectionProblem

    n = 200
    video = np.arange(n) < 60
    p = SelectionProblem(np.ones(n), budget=100)
    p.add_share(video, lo=0.5, name="video_share")
    p.add_cap(np.where(video, np.arange(n) // 10, -1), at_most=4, name="per_video")
    real = highs.solve_lp

    def stopped(*args, **kwargs):  # every LP hits its time limit
        out = real(*args, **kwargs)
        out.status = "time_limit"
        return out

    monkeypatch.setattr(highs, "solve_lp", stopped)
    text = diagnose.explain_infeasible(p, time_limit=1.0)
    assert "only 0" not in text and "did not finish" in text
