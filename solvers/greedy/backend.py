"""The greedy backend: priced order, fill, repair, a certified bound (LP by pricing, or Lagrangian).

1. Prices for the knapsack / covering / share rows by bisection on a subsample
   (``lagrange.Lagrangian.fit_rows``): the order is the reduced cost c − Aᵀy, so a token budget
   that binds shapes the order from the start. Without such rows the order is the score order.
2. Fill in that order with every upper bound checked and floors reserved (``fill.py``).
3. Repair: swaps (``repair.py``, a time slice); if rows are left, a quick refill with the missed
   rows' prices raised (``_escalate``) and a MIP on a neighbourhood of the filled subset
   (``neighborhood.py``: rows that pull against each other are fixed together). With the bound
   on, only the refill runs here: the LP-guided pass (5) usually makes the MIP unnecessary, and
   it runs after that pass only if no feasible subset is known yet.
4. Bound (``bound=True``): the pool's LP bound by core + pricing (``pricing.lp_bound``) within
   2 × the time the greedy took (at least ``BOUND_MIN_S`` and ``LP_S_PER_NNZ`` per nonzero: at
   4.5M the LP needs more than twice the greedy); a run stopped there still gives a
   valid, looser bound. Without one, the Lagrangian of the fitted prices (``lagrange.py``: budget
   and the main quota family kept exact, valid for any prices) plus subgradient steps.
5. Guided pass: the greedy again in the LP's order (reduced cost, LP value, score) without the
   knapsack pacing, i.e. a rounding of the LP solution, repaired by a small neighbourhood MIP
   (``GUIDED_MIP_SIZE`` per side); below ``GUIDED_MAX_N`` also one local neighbourhood MIP around
   the better subset if it is not within ``mip_gap`` yet.

Every phase reads one deadline; the status follows the certified gap (``selection/solve.py``).
``auto`` reuses ``run_greedy`` and ``guided_pass``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from gdo_opt.solvers.base import BaseBackend, RawResult, SolveOptions, Status

from .lagrange import Lagrangian
from .neighborhood import WHOLE_POOL_N, improve_by_mip, repair_by_mip, violated_rows
from .repair import Greedy

GUIDED_MAX_N = 300_000  # above this no local-search MIP after the guided pass
GUIDED_MIP_SIZE = 500  # the guided pass's repair neighbourhood per side (its fill misses by little)
SWAP_REPAIR_S = 2.0  # time slice of the swap repair before the neighbourhood MIP takes over
SWAP_MAX_N = 200_000  # above this, swaps only for starved floors (priced rows go to the MIP)
POLISH_STEPS = 30  # subgradient steps of the Lagrangian fallback bound
BOUND_MIN_S = 5.0  # the LP bound gets 2 × the time the greedy took, at least this
BOUND_FACTOR = 2.0
ESCALATION = (4.0, 8.0, 16.0)  # price factors of the quick refills (hard 1M and 4.5M: ×2 missed, ×4 held)
REFINE = 2  # bisection steps of the quick refill when no LP will follow
LP_S_PER_NNZ = 6e-7  # the LP bound's time floor (hard 4.5M, 35.8M nnz: pricing ~16 s at load 2; 1M: ~4.4 s)
LP_SETUP_S_PER_NNZ = 2e-7  # the LP bound's setup per standard-form nonzero (4.5M hard: ~5 s at load 3)


@dataclass
class GreedyOptions(SolveOptions):
    bound: bool = True  # certify the answer with a Lagrangian bound (core LP multipliers)
    guided: bool = True  # second pass in the LP's order (a rounding of the LP solution)
    fallback: bool = True  # repair by neighbourhood MIPs when swaps leave rows violated (False: no subset)


def descending(primary: np.ndarray, *ties: np.ndarray) -> np.ndarray:
    """``np.lexsort((-ties[-1], …, -ties[0], -primary))``, i.e. descending by ``primary``, then by
    each tie-breaker, then by index; a quicksort on the primary key plus a lexsort of the tied runs
    only (at 4.5M candidates the full lexsort took 3.5 s, this 0.8 s)."""
    order = np.argsort(-primary)
    p = primary[order]
    eq = p[1:] == p[:-1]
    if not eq.any():
        return order
    run = np.cumsum(np.r_[True, ~eq]) - 1
    tied = np.flatnonzero(np.bincount(run)[run] > 1)
    sub = order[tied]
    order[tied] = sub[np.lexsort([sub, *(-t[sub] for t in reversed(ties)), run[tied]])]
    return order


def priced_core(problem, form, d: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """The first pricing LP's core for a greedy that has prices: the top 1.2·K (``effective_budget``) by the priced
    reduced cost ``d``, the fill, and the top ⌈1.1·lo⌉ of every floored group (no score-order
    top, no extra members per floor). Hard 1M: 41k columns, pricing 2.8 s, against 61k and
    4.4 s for the score-order core, same bound (docs/solvers.md)."""
    from gdo_opt.solvers import pricing

    take = min(problem.n, int(1.2 * pricing.effective_budget(problem, form)) + 1)  # K, or a size_k row's
    top = np.argpartition(-d, take - 1)[:take] if take < problem.n else np.arange(problem.n)
    return pricing.initial_core(problem, extra=np.union1d(top, fill), top_factor=0.0, floor_factor=1.1,
                                floor_extra=0, form=form)


def priced_order(problem, lag: Lagrangian | None = None, deadline=None) -> tuple[np.ndarray, np.ndarray]:
    """(order, reduced costs) with the generic rows priced (score order when there are none)."""
    lag = lag or Lagrangian(problem)
    lag.fit_rows(deadline=deadline)
    d = lag.reduced()
    return descending(d, problem.scores), d


def run_greedy(problem, form=None, order=None, deadline=None, priority=None, fallback: bool = True,
               threads=None, lag: Lagrangian | None = None, pace: bool = True, mip_size: int | None = None,
               defer_mip: bool = False, base: Greedy | None = None,
               refine: int = 0) -> tuple[np.ndarray, list[str], dict]:
    """Fill + repair; returns (indices, names of rows still violated, timings). ``order``: the
    order to fill in (default: the priced order); ``priority``: what the neighbourhood MIP
    ranks by (default: the order's ranks); ``lag``: the priced order's Lagrangian (it allows
    the escalated refills, see ``_escalate``); ``pace``: knapsack pacing in the fill (off for an
    LP order); ``mip_size``: the repair MIP's first neighbourhood per side; ``defer_mip``: no
    MIP repair here — an infeasible fill is returned with ``info["pending"]`` (its 0/1 vector)
    for the caller to repair later (the LP-guided pass usually makes that unnecessary); ``base``:
    a ``Greedy`` whose setup is reused (``fresh``); ``refine``: bisection steps of the quick
    refill (``_escalate``). With a ``deadline`` every phase stops there."""
    form = form or problem.standard_form()
    start = time.perf_counter()
    if order is None:
        lag = Lagrangian(problem)
        order, priority = priced_order(problem, lag, deadline=deadline)
    if priority is None:
        priority = np.empty(problem.n)
        priority[order] = -np.arange(problem.n, dtype=np.float64)
    price_s = time.perf_counter() - start
    g = Greedy(problem, order=order, deadline=deadline, pace=pace) if base is None else base.fresh(order, deadline, pace)
    g.fill()
    fill_s = time.perf_counter() - start - price_s
    info = dict(price_seconds=price_s, fill_seconds=fill_s, skipped_rows=g.skipped_rows)
    bad = violated_rows(form, g.x)
    x = g.x
    generic = [r for r in bad if form.row_family[r] >= 0 and not problem.families[form.row_family[r]].counted]
    if bad.size and (not generic or problem.n <= SWAP_MAX_N) and not _expired(deadline):
        # swaps first (cheap on floors; one pass over a priced row is slow at 1M, hence the size
        # limit); if they fail, the MIP starts from the fill, which the swaps may have made worse
        x_fill = g.x.copy()
        slice_end = time.perf_counter() + SWAP_REPAIR_S
        g.deadline = slice_end if deadline is None else min(deadline, slice_end)
        g.repair(form)
        bad = violated_rows(form, g.x)
        x = x_fill if bad.size else g.x
        if bad.size:
            bad = violated_rows(form, x)
    info["repair_seconds"] = time.perf_counter() - start - price_s - fill_s
    # with a time limit (or a deferred MIP) the quick feasible refill comes first (kept if the MIP
    # does not finish); without one only if the MIP fails
    backup = None
    if bad.size and lag is not None and (deadline is not None or defer_mip):
        backup = _escalate(g, form, lag, bad, deadline, info, refine)
    if bad.size and defer_mip and backup is None:
        info["pending"] = x
        info["stopped"] = _expired(deadline)
        return np.flatnonzero(x), [problem.row_name(int(r)) for r in bad], info
    if bad.size and fallback and not defer_mip and not _expired(deadline):
        t = time.perf_counter()
        x, mip_info = repair_by_mip(form, x, priority, deadline, threads=threads, size=mip_size)
        info.update(mip_info, mip_seconds=time.perf_counter() - t)
        bad = violated_rows(form, x)
    if bad.size and backup is None and lag is not None and deadline is None and not defer_mip:
        backup = _escalate(g, form, lag, bad, deadline, info, refine)
    if bad.size and backup is not None:
        x, bad = backup, np.zeros(0, dtype=np.int64)
        info["escalated_fill_used"] = True
    info["stopped"] = _expired(deadline)
    return np.flatnonzero(x), [problem.row_name(int(r)) for r in bad], info


def no_lp_ahead(form, deadline) -> bool:
    """True when the time left cannot hold an LP bound's setup twice over: the quick refill is
    then likely the answer, worth refining."""
    return deadline is not None and deadline - time.perf_counter() < 2 * LP_SETUP_S_PER_NNZ * form.A.nnz


def _expired(deadline) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


def _escalate(base: Greedy, form, lag: Lagrangian, bad: np.ndarray, deadline, info,
              refine: int = 0) -> np.ndarray | None:
    """A quick feasible subset: refill with the prices of the violated priced rows raised
    (``ESCALATION``; a covering row the fill missed by 32% at 1M needed ×4; each refill costs
    ~1.2 s at 4.5M, so ×2 is no longer tried). Its value is poor: it is the incumbent until the
    guided pass or the neighbourhood MIP gives a better one. ``refine``: that many geometric
    bisection steps between the last factor that missed and the first that held, while the
    deadline leaves room for one more refill — for when no LP will follow (hard 1M: ×2.5 holds
    at 64,178 where ×4 gives 57,041)."""
    key = {k: i for i, k in enumerate(lag.w_key)}
    rows = [key[(int(form.row_family[r]), int(form.row_group[r]))] for r in bad
            if (int(form.row_family[r]), int(form.row_group[r])) in key]
    if not rows or not np.any(lag.w_y[rows]):
        return None
    saved = lag.w_y.copy()
    t = time.perf_counter()

    def refill(factor):
        lag.w_y = saved.copy()
        lag.w_y[rows] *= factor
        g = base.fresh(descending(lag.reduced(), base.scores), deadline)
        g.fill()
        return g.x if violated_rows(form, g.x).size == 0 else None

    try:
        missed, held, x = 1.0, None, None
        for factor in ESCALATION:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            x = refill(factor)
            if x is not None:
                held = factor
                break
            missed = factor
        last = (time.perf_counter() - t) / max(1, ESCALATION.index(held) + 1 if held else 1)
        for _ in range(refine if held else 0):
            if deadline is not None and time.perf_counter() + last > deadline:  # a late one stops at it
                break
            mid = math.sqrt(missed * held)
            s0 = time.perf_counter()
            y = refill(mid)
            last = time.perf_counter() - s0
            if y is None:
                missed = mid
            else:
                held, x = mid, y
        info["escalate_seconds"] = time.perf_counter() - t
        if held is not None:
            info["escalated_factor"] = held
        return x
    finally:
        lag.w_y = saved


def guided_pass(problem, form, result, deadline=None, base: Greedy | None = None,
                threads=None) -> tuple[np.ndarray, list[str], dict]:
    """The greedy again in LP order (``result``: a pricing.PricingResult): reduced cost first,
    then the LP value, then the score; no knapsack pacing (the LP's top already fits every row),
    so the fill is a rounding of the LP solution. Its few violated rows (hard 1M: the covering
    row short by 4 units) go to a small neighbourhood MIP (``GUIDED_MIP_SIZE`` per side, growing
    if infeasible): 0.4–1 s where the first pass's 24k-column repair took 3–8 s."""
    x_lp = np.zeros(problem.n)
    x_lp[result.core] = result.x_core
    order = descending(np.round(result.reduced, 9), np.round(x_lp, 9), problem.scores)
    size = GUIDED_MIP_SIZE + int(((x_lp > 1e-6) & (x_lp < 1 - 1e-6)).sum())
    return run_greedy(problem, form, order=order, deadline=deadline, priority=result.reduced, pace=False,
                      mip_size=size, base=base, threads=threads)


class GreedyBackend(BaseBackend):
    name = "greedy"
    Options = GreedyOptions

    def solve(self, problem, options: GreedyOptions) -> RawResult:
        from gdo_opt.solvers.pricing import release_columns

        form = problem.standard_form()
        try:
            return self._solve(problem, form, options)
        finally:
            release_columns(form)

    def _solve(self, problem, form, options: GreedyOptions) -> RawResult:
        start = time.perf_counter()
        deadline = options.deadline
        lag = Lagrangian(problem, form)
        order, d = priced_order(problem, lag, deadline=deadline)
        if options.expired():  # before the fill's setup (2 s at 4.5M candidates)
            return RawResult(Status.TIME_LIMIT, None, message=f"greedy: time limit reached while pricing "
                             f"({time.perf_counter() - start:.2f}s)", info={"stopped": True})
        base = Greedy(problem, order=order, deadline=deadline)
        # with the bound on, the MIP repair waits for the LP-guided pass (which usually needs none)
        defer = bool(options.bound and options.fallback and options.guided)
        indices, left, info = run_greedy(problem, form, order, deadline, priority=d, fallback=options.fallback,
                                         threads=options.threads, lag=lag, defer_mip=defer, base=base,
                                         refine=REFINE if no_lp_ahead(form, deadline) else 0)
        pending = info.pop("pending", None)
        seconds = time.perf_counter() - start
        notes = [f"greedy {indices.size} items in {seconds:.2f}s" if not left
                 else f"greedy fill left {len(left)} row(s) violated after {seconds:.2f}s"]
        if info.get("escalated_fill_used"):
            notes.append(f"quick refill with the missed rows' prices x{info['escalated_factor']:g}")
        _note_mip(info, notes)
        options.report("greedy", items=int(indices.size), objective=problem.objective(indices) if not left else math.nan,
                       rows_left=len(left), seconds=seconds)
        if left and pending is None:
            return self._no_subset(problem, lag, left, info, notes, options)
        found = None if left else indices
        bound = math.nan
        if options.bound and not options.expired():
            bound, found = self._certify(problem, form, lag, base, found, indices, info, notes, options, start)
        elif options.bound:  # out of time: the fitted prices' Lagrangian value is still a valid bound
            bound = lag.evaluate()[0]
            notes.append(f"Lagrangian bound {bound:.10g} at the fitted prices (no time left for the core LP)")
        else:
            notes.append("bound skipped (bound=False)")
        if found is None and pending is not None and not options.expired():
            t = time.perf_counter()  # the deferred repair of the first fill
            x, mip_info = repair_by_mip(form, pending, d, deadline, threads=options.threads)
            info.update(mip_info, mip_seconds=time.perf_counter() - t)
            _note_mip(info, notes)
            left = [problem.row_name(int(r)) for r in violated_rows(form, x)]
            if not left:
                found = np.flatnonzero(x)
        info["stopped"] = bool(info.get("stopped")) or options.expired()
        if found is None:
            return self._no_subset(problem, lag, left, info, notes, options)
        status = Status.TIME_LIMIT if info["stopped"] else Status.FEASIBLE
        return RawResult(status, found, bound, "; ".join(notes), info)

    def _certify(self, problem, form, lag, base, found, fill, info, notes, options, solve_start):
        """The pool's LP bound by core + pricing (``pricing.lp_bound``, the first fill in the core)
        within 2 × the time the greedy took (at least ``BOUND_MIN_S``, ``LP_S_PER_NNZ``); if none, the
        Lagrangian of the fitted prices (valid for any prices). Then the guided pass and, on small
        pools, a local MIP. Returns (bound, best feasible indices or None)."""
        from gdo_opt.solvers import pricing

        t = time.perf_counter()
        value = problem.objective(found) if found is not None else None
        # the bound's share of the time: 2 × the greedy's, and at least what pricing needs at this size
        spent = max(BOUND_MIN_S, BOUND_FACTOR * (t - solve_start), LP_S_PER_NNZ * form.A.nnz)
        end = t + spent if options.deadline is None else min(options.deadline, t + spent)
        left = options.remaining()
        if left is not None and left < LP_SETUP_S_PER_NNZ * form.A.nnz:
            # the LP's setup alone (CSC copy, core, first LP) would overrun the limit (measured at
            # 4.5M: 5 s past a 10 s limit before pricing could start)
            result = pricing.PricingResult("error", math.nan, math.nan, fill, None, None, [],
                                           f"no time for the LP ({left:.1f}s left)")
        else:
            core = priced_core(problem, form, lag.reduced(), fill)
            result = pricing.lp_bound(problem, core=core, deadline=end, threads=options.threads,
                                      on_round=options.progress)
        info["bound_iterations"] = result.iterations
        if result.has_bound:
            bound, reduced = result.bound, result.reduced
            notes.append(f"LP bound {bound:.10g} ({result.status}; core {result.core.size}, "
                         f"{len(result.iterations)} pricing round(s)) in {time.perf_counter() - t:.2f}s")
        else:
            polish_end = end if options.deadline is not None else max(end, time.perf_counter() + 0.25 * spent)
            lag.run(POLISH_STEPS, target=value, deadline=polish_end)
            lr = lag.result()
            bound, reduced = lr.bound, lr.reduced
            notes.append(f"no LP bound ({result.status}: {result.message}); Lagrangian bound {bound:.10g} "
                         f"({lr.iterations} multiplier steps)")
        info["bound_seconds"] = time.perf_counter() - t
        options.report("bound", bound=bound, seconds=time.perf_counter() - t)
        if not options.guided or options.expired():
            return bound, found
        t = time.perf_counter()
        g_end = t + spent if options.deadline is None else min(options.deadline, t + spent)
        if result.has_bound and result.x_core is not None:
            g_idx, g_left, g_info = guided_pass(problem, form, result, deadline=g_end, base=base,
                                                threads=options.threads)
        else:
            g_idx, g_left, g_info = run_greedy(problem, form, descending(reduced, problem.scores), g_end,
                                               priority=reduced, fallback=options.fallback,
                                               threads=options.threads, base=base)
        g_value = problem.objective(g_idx) if not g_left else -math.inf
        info["guided"] = {k: v for k, v in g_info.items() if k != "pending"}
        info["guided_objective"] = g_value
        options.report("guided pass", objective=g_value, seconds=time.perf_counter() - t)
        notes.append(f"guided pass {g_value:.10g} in {time.perf_counter() - t:.2f}s" if not g_left
                     else f"guided pass left {len(g_left)} row(s) violated")
        if not g_left and (found is None or g_value > value):
            found = g_idx
        if found is None:
            return bound, found
        gap = (bound - problem.objective(found)) / max(1.0, abs(bound))
        if problem.n <= GUIDED_MAX_N and gap > options.mip_gap and not options.expired():
            t = time.perf_counter()  # local search around the better subset, by reduced cost
            x = np.zeros(problem.n, dtype=bool)
            x[found] = True
            size = min(problem.n, problem.budget_hi // 2 + 500)
            # a local step, not a proof: at most as long as everything before it took
            cap = max(0.5, time.perf_counter() - solve_start)
            x, more = improve_by_mip(form, x, reduced, options.deadline, size, options.mip_gap,
                                     options.threads, time_cap=cap)
            info.update(more)
            found = np.flatnonzero(x)
            notes.append(f"neighbourhood MIP {problem.objective(found):.10g} in {time.perf_counter() - t:.2f}s")
        return bound, found

    def _no_subset(self, problem, lag, left, info, notes, options) -> RawResult:
        shown = ", ".join(left[:5]) + (f" (+{len(left) - 5} more)" if len(left) > 5 else "")
        notes.append(f"repair left {len(left)} row(s) violated ({shown})")
        if info["stopped"]:
            return RawResult(Status.TIME_LIMIT, None, message="; ".join(notes), info=info)
        if lag.inner_max(lag.reduced()) is None:  # the budget and one quota family alone fail
            return RawResult(Status.INFEASIBLE, None, message="; ".join(notes), info=info)
        tries = info.get("mip_tries", [])
        if tries and tries[-1]["status"] == "infeasible" and tries[-1]["free"] >= problem.n:
            return RawResult(Status.INFEASIBLE, None, message="; ".join(notes), info=info)
        if not options.fallback:
            notes.append("fallback=False")
        elif problem.n > WHOLE_POOL_N:
            notes.append("no neighbourhood held a feasible subset (this does not prove infeasibility)")
        return RawResult(Status.ERROR, None, message="; ".join(notes), info=info)


def _note_mip(info, notes) -> None:
    if info.get("mip_tries"):
        notes.append("repaired by neighbourhood MIP (" + ", ".join(
            f"{t['free']} free: {t['status']}" for t in info["mip_tries"]) + ")")
