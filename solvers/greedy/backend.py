"""The greedy backend: fill + repair, a certified LP bound, an LP-guided second pass.

1. Score order (stable, ties by index) with every upper bound checked and floors protected by
   reservation, in vectorized blocks (``fill.py``).
2. Repair: every still-violated row is fixed by swaps, in batches kept only when no row gets
   worse (``repair.py``).
3. If rows stay violated, HiGHS decides within the time left (``fallback=False``: no subset); the
   answer is never an infeasible set marked feasible, and its status follows the gap it reaches.
The bound is the LP relaxation (core + pricing for big pools, ``solvers/pricing.py``);
``bound=False`` skips it. With the bound comes a second pass in reduced-cost order
(``guided=False`` turns it off); the better pass is returned. ``auto`` reuses ``run_greedy`` and
``guided_pass``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from gdo_opt.solvers.base import BaseBackend, RawResult, SolveOptions, Status

from .repair import Greedy


@dataclass
class GreedyOptions(SolveOptions):
    bound: bool = True  # certify the answer with the LP bound (core + pricing)
    guided: bool = True  # second pass in LP reduced-cost order (needs the bound)
    fallback: bool = True  # repair failed: ask HiGHS for a feasible set (False: report no subset)


def run_greedy(problem, form=None, order=None, deadline=None) -> tuple[np.ndarray, list[str], dict]:
    """Phase 1 + repair; returns (indices, names of rows still violated, timings). With a
    ``deadline`` (perf_counter time) both phases stop there (``info["stopped"]``)."""
    form = form or problem.standard_form()
    start = time.perf_counter()
    g = Greedy(problem, order=order, deadline=deadline)
    g.fill()
    fill_s = time.perf_counter() - start
    left = g.repair(form)
    info = dict(fill_seconds=fill_s, repair_seconds=time.perf_counter() - start - fill_s,
                skipped_rows=g.skipped_rows, stopped=g.stopped)
    return np.flatnonzero(g.x), left, info


def guided_pass(problem, form, result, deadline=None) -> tuple[np.ndarray, list[str]]:
    """The greedy again, in LP order: reduced cost d = c − Aᵀy first (items the LP takes whole
    have d ≥ 0, items it leaves have d ≤ 0), then the LP value, then the score. The LP is almost
    integral, so this pass lands next to the optimum at the cost of one more greedy run."""
    x_lp = np.zeros(problem.n)
    x_lp[result.core] = result.x_core
    order = np.lexsort((-problem.scores, -np.round(x_lp, 9), -np.round(result.reduced, 9)))
    idx, left, _ = run_greedy(problem, form, order=order, deadline=deadline)
    return idx, left


class GreedyBackend(BaseBackend):
    name = "greedy"
    Options = GreedyOptions

    def solve(self, problem, options: GreedyOptions) -> RawResult:
        from gdo_opt.solvers import pricing

        start = time.perf_counter()
        form = problem.standard_form()
        indices, left, info = run_greedy(problem, form, deadline=options.deadline)
        seconds = time.perf_counter() - start
        notes = [f"greedy {indices.size} items in {seconds:.2f}s"]
        options.report("greedy", items=int(indices.size), objective=problem.objective(indices),
                       rows_left=len(left), seconds=seconds)
        if left and info["stopped"]:
            return RawResult(Status.TIME_LIMIT, None, message="; ".join(
                [*notes, f"stopped at the time limit with {len(left)} row(s) still violated"]), info=info)
        if left:
            shown = ", ".join(left[:5]) + (f" (+{len(left) - 5} more)" if len(left) > 5 else "")
            notes.append(f"repair left {len(left)} row(s) violated ({shown})")
            if not options.fallback:
                return RawResult(Status.ERROR, None, message="; ".join([*notes, "fallback=False"]), info=info)
            notes.append("asking HiGHS")
            raw = _highs_fallback(problem, options)
            raw.message = "; ".join([*notes, raw.message])
            raw.info.update(info, fallback="highs")
            return raw
        bound = float("nan")
        # cut short with every row holding: a valid subset, reported as stopped at the limit
        status = Status.TIME_LIMIT if info["stopped"] else Status.FEASIBLE
        if options.bound:
            result = pricing.lp_bound(problem, extra=indices, deadline=options.deadline, threads=options.threads,
                                      on_round=options.progress)
            info["bound_iterations"] = result.iterations
            if result.status == "optimal":
                bound = result.bound
                options.report("lp bound", bound=bound, core=int(result.core.size), rounds=len(result.iterations))
                notes.append(f"LP bound {bound:.6g} (core {result.core.size}, {len(result.iterations)} "
                             f"pricing round(s))")
                if options.guided:
                    t = time.perf_counter()
                    g_idx, g_left = guided_pass(problem, form, result, deadline=options.deadline)
                    value = problem.objective(g_idx)
                    options.report("guided pass", objective=value, seconds=time.perf_counter() - t)
                    notes.append(f"LP-guided pass {value:.6g} in {time.perf_counter() - t:.2f}s")
                    info["guided_objective"] = value
                    if not g_left and value > problem.objective(indices):
                        indices = g_idx
            else:
                notes.append(f"no LP bound ({result.status}: {result.message})")
                if options.expired():
                    status = Status.TIME_LIMIT
        else:
            notes.append("bound skipped (bound=False)")
        return RawResult(status, indices, bound, "; ".join(notes), info)


def _highs_fallback(problem, options: GreedyOptions) -> RawResult:
    from gdo_opt.solvers.highs import HighsBackend, HighsOptions

    opts = HighsOptions(time_limit=options.time_limit, mip_gap=max(options.mip_gap, 1e-2), seed=options.seed,
                        threads=options.threads, verbose=options.verbose)
    opts.deadline = options.deadline
    return HighsBackend().solve(problem, opts)
