"""``auto``: the exact MIP when the model is small; otherwise core + pricing, MIP on the core.

Small models (standard-form nnz ≤ ``direct_max_nnz``, 250k by default: about 40k candidates of a
GDO-shaped pool, solved by plain HiGHS in seconds) go straight to HiGHS. Larger ones:

0. under a time limit of at most ``QUICK_FIRST_BELOW``, a quick greedy first (priced fill + quick refills, no MIP, at most
   ``QUICK_SHARE`` of the limit): the subset returned, with its certified gap, if the clock runs
   out; its fill joins the initial core;

1. core LP + pricing over the whole pool (``solvers/pricing.py``): a bound L valid for the pool
   after every round (the smallest L(y) seen), converged when no outside column prices positive;
   it may use at most ``PRICING_SHARE`` of a time limit, then stops with its valid bound;
2. the greedy in LP order (reduced costs), else in score order: if it is within ``mip_gap`` of L,
   done; otherwise HiGHS MIP on the core columns, warm-started with it (reduced-cost fixing drops
   core columns that cannot reach its value: L + d_j < incumbent);
3. the pool bound is max(core MIP bound, L + max_{j outside} d_j), at most L: a selection using an
   outside column j is worth ≤ L + d_j (valid for any signed duals). If the gap is still above
   ``mip_gap``, every column with d_j ≥ −(L − obj) joins and the MIP runs once more;
   if the MIP fails, the greedy answer with its certified gap.

Every decision, each pricing round and the timings go into ``sel.message`` / ``sel.info``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from gdo_opt.solvers.base import BaseBackend, RawResult, Status, relative_gap
from gdo_opt.solvers.highs import HighsOptions

DIRECT_MAX_NNZ = 250_000
PRICING_SHARE = 0.7  # of the time limit, at most, for the pricing loop (its bound guides the rest)
WIDEN_MAX_FACTOR, WIDEN_MIN = 3, 200_000  # the second core MIP never grows past this
GREEDY_MIN_S = 2.0  # the score-order greedy only runs with at least this much time left
QUICK_FIRST_BELOW = 60.0  # s: limits up to this run the quick greedy first; longer ones (the CLI's 600 s
# default) leave pricing and the LP-guided greedy time to finish, and the quick pass cost the paper
# goals 0.2-1.7 s per 1M-pair select
QUICK_SHARE = 0.95  # of a time limit, at most, for the quick greedy incumbent (hard 4.5M: ~8 s of 10)
GREEDY_SHARE = 0.3  # of the time left, at most, for the LP-guided greedy
SUPPORT_SHARE = 0.4  # of the time left, at most, for the MIP on the LP's support
SUPPORT_MAX_S = 60.0  # its limit when the solve has none (the core MIP follows anyway)
LP_FIRST_SHARE = 0.25  # of a time limit, at most, for the small models' LP-first check
INTEGRAL_TOL = 1e-6  # |x - round(x)| up to which an LP optimum counts as integral (then checked exactly)


@dataclass
class AutoOptions(HighsOptions):
    force_core: bool = False  # take the core + pricing path whatever the size
    direct_max_nnz: int = DIRECT_MAX_NNZ  # standard-form nnz up to which plain HiGHS runs
    core_top_factor: float = 1.05  # initial core: the top factor·K candidates by score ...
    core_floor_factor: float = 1.1  # ... and the top ⌈factor·lo⌉ + 5 of every floored group
    lp_method: str = "choose"  # first pricing LP: "choose", "simplex", "ipm", "ipm-nocrossover"
    add_cap: int = 0  # columns added per pricing round (0: max(2000, core/10))
    lp_first: bool = True  # small models: the LP relaxation first, the MIP only when its optimum is fractional


class AutoBackend(BaseBackend):
    name = "auto"
    Options = AutoOptions
    requires = ("highspy",)

    def solve(self, problem, options: AutoOptions) -> RawResult:
        from gdo_opt.solvers.highs import HighsBackend

        if options.lp_method not in ("choose", "simplex", "ipm", "ipm-nocrossover"):
            from gdo_opt.errors import SolverOptionError

            raise SolverOptionError("lp_method", "must be 'choose', 'simplex', 'ipm' or 'ipm-nocrossover'", options.lp_method)
        nnz = int(problem.standard_form().A.nnz)
        if not options.force_core and nnz <= options.direct_max_nnz:
            t = time.perf_counter()
            raw = _integral_lp(problem, options) if options.lp_first else None
            if raw is not None:
                raw.message = (f"auto: LP relaxation integral (nnz {nnz} ≤ {options.direct_max_nnz}), "
                               f"optimal by its certified bound in {time.perf_counter() - t:.2f}s; no MIP needed")
                raw.info["path"] = "direct-lp"
                return raw
            raw = HighsBackend().solve(problem, options)
            raw.message = f"auto: direct HiGHS MIP (nnz {nnz} ≤ {options.direct_max_nnz}); {raw.message}"
            raw.info["path"] = "direct"
            return raw
        why = "forced core path" if options.force_core else f"nnz {nnz} > {options.direct_max_nnz}"
        from gdo_opt.solvers.pricing import release_columns

        try:
            return solve_core(problem, options, why)
        finally:
            release_columns(problem.standard_form())


def _integral_lp(problem, options: AutoOptions) -> RawResult | None:
    """The LP relaxation of a small model, when its optimum is integral: that selection is optimal,
    certified by the LP's Lagrangian bound L(y) (valid for any duals, ``solvers/pricing.py``).

    Why: the paper goals' models are usually integral at the root; HiGHS then spent 0.3-0.5 s of a
    0.35-0.75 s MIP in presolve at 200k pairs, the LP alone takes 0.04-0.09 s. The answer must pass
    the families' own check and lie within ``mip_gap`` of L; otherwise None, and the MIP runs (at
    most ``LP_FIRST_SHARE`` of a time limit spent here)."""
    from gdo_opt.solvers import pricing

    left = options.remaining()
    deadline = None if left is None else time.perf_counter() + LP_FIRST_SHARE * left
    try:
        res = pricing.lp_bound(problem, deadline=deadline, threads=options.threads)
    finally:
        pricing.release_columns(problem.standard_form())  # the LP's column copy of the matrix
    if res.status != "optimal" or res.x_core is None or not res.has_bound:
        return None
    x = np.asarray(res.x_core, dtype=np.float64)
    if x.size and float(np.abs(x - np.round(x)).max()) > INTEGRAL_TOL:
        return None
    chosen = np.sort(np.asarray(res.core, dtype=np.int64)[x > 0.5])
    if problem.check(chosen):
        return None
    if relative_gap(problem.objective(chosen), res.bound) > options.mip_gap:
        return None
    return RawResult(Status.OPTIMAL, chosen, float(res.bound), "", dict(lp_value=res.lp_value))


def solve_core(problem, options: AutoOptions, why: str) -> RawResult:
    """Core LP + pricing → LP-guided greedy → MIP on the core (see the module docstring)."""
    from gdo_opt.solvers import greedy, pricing

    def progress(event: dict) -> None:
        if options.progress is not None:
            options.progress({**event, "elapsed": time.perf_counter() - t0})

    t0 = time.perf_counter()
    notes = [f"auto: core + pricing ({why})"]
    timings: dict[str, float] = {}
    limit = options.remaining()
    # phase budget: pricing may use PRICING_SHARE of the limit; what it leaves goes to greedy and MIPs
    pricing_deadline = None if limit is None else t0 + PRICING_SHARE * limit

    g_idx, g_ok, lag, fill = None, False, None, None
    if limit is not None and limit <= QUICK_FIRST_BELOW:
        # under a short time limit, a feasible subset first (the priced fill and its quick refills,
        # no MIP): the answer if the clock runs out, and its fill seeds the core
        t = time.perf_counter()
        g_idx, lag, fill = _quick_incumbent(problem, problem.standard_form(), t0 + QUICK_SHARE * limit)
        g_ok = g_idx is not None
        timings["quick_greedy"] = time.perf_counter() - t
        notes.append(f"quick greedy {problem.objective(g_idx):.10g} in {timings['quick_greedy']:.2f}s" if g_ok
                     else f"quick greedy found no feasible subset in {timings['quick_greedy']:.2f}s")
        progress(dict(event="quick greedy", objective=problem.objective(g_idx) if g_ok else -math.inf,
                      seconds=timings["quick_greedy"]))
    late = pricing_deadline is not None and time.perf_counter() >= pricing_deadline
    pricer = pricing.Pricer(problem)
    if late:  # price() stops at once
        core = np.zeros(0, dtype=np.int64)
    elif lag is not None and np.any(lag.w_y):
        # the quick greedy priced binding knapsack / covering / share rows: its order makes a
        # smaller, better core (hard 1M: pricing 2.8 s instead of 4.7 s); without such prices the
        # score-order core is better (paper goals at K = 50k: one 130k-column LP took 3.7–5.3 s,
        # three rounds from 102k columns 4.0 s)
        core = greedy.backend.priced_core(problem, pricer.form, lag.reduced(), fill)
    else:
        core = pricing.initial_core(problem, top_factor=float(options.core_top_factor),
                                    floor_factor=float(options.core_floor_factor), form=pricer.form)
    progress(dict(event="core", columns=int(core.size), rows=int(pricer.form.A.shape[0]),
                  nnz=int(pricer.form.A.nnz), seconds=time.perf_counter() - t0))

    def on_round(it: dict) -> None:
        progress(dict(event="pricing", round=it["round"], core=it["core"], rows=it["rows"], lp=it["lp"],
                      bound=it["best_bound"], positive=it["positive"], added=it["added"]))

    result = pricing.price(problem, core, pricer=pricer, deadline=pricing_deadline, threads=options.threads,
                           method=options.lp_method, on_round=on_round, add_cap=options.add_cap or None)
    timings["pricing"] = time.perf_counter() - t0 - timings.get("quick_greedy", 0.0)
    rounds = "; ".join(
        f"round {it['round']}: core {it['core']}, LP {it['lp'] if isinstance(it['lp'], str) else format(it['lp'], '.8g')}, "
        f"+{it['added']} columns, {it['lp_seconds'] + it['price_seconds']:.2f}s"
        for it in result.iterations
    )
    notes.append(f"pricing: {rounds}")
    info = dict(path="core", iterations=result.iterations, timings=timings, initial_core=int(core.size))
    if result.status == "infeasible":
        return RawResult(Status.INFEASIBLE, None, math.nan, "; ".join([*notes, result.message]), info)
    bound = result.bound if result.has_bound else math.nan
    if result.message:
        notes.append(result.message)
    if result.has_bound:
        notes.append(f"pool bound {bound:.10g} after {len(result.iterations)} round(s)")

    # an incumbent: the greedy in LP order (usually within a hair of the bound), else in score order
    t = time.perf_counter()
    # (an LP still leaning on artificial columns orders the pool badly: then score order only)
    leaning = bool(result.iterations) and result.iterations[-1].get("artificial", 0.0) > pricing.ART_TOL
    if result.has_bound and result.x_core is not None and not leaning:
        remaining = options.remaining()
        cap = None if remaining is None else time.perf_counter() + GREEDY_SHARE * remaining
        lp_idx, lp_left, _ = greedy.guided_pass(problem, pricer.form, result, deadline=cap, threads=options.threads)
        if not lp_left and (not g_ok or problem.objective(lp_idx) > problem.objective(g_idx)):
            g_idx, g_ok = lp_idx, True
    remaining = options.remaining()
    if not g_ok and (remaining is None or remaining > GREEDY_MIN_S):
        # (with less left, skip it: its setup does not watch the deadline at 4.5M; measured 16 s
        # for a 1 s deadline)
        s_idx, s_left, _ = greedy.run_greedy(problem, pricer.form, deadline=options.deadline)
        if not s_left:
            g_idx, g_ok = s_idx, True
    g_obj = problem.objective(g_idx) if g_ok else -math.inf
    timings["greedy"] = time.perf_counter() - t
    notes.append(f"greedy {g_obj:.10g} in {timings['greedy']:.2f}s" if g_ok else "greedy found no feasible subset")
    progress(dict(event="guided greedy", objective=g_obj, bound=bound, gap=relative_gap(g_obj, bound),
                  seconds=timings["greedy"]))
    if not result.has_bound:
        # no duals: under a time limit that is the limit's doing (the pricing budget ran out)
        timed_out = pricing_deadline is not None and time.perf_counter() >= pricing_deadline - 0.05
        return _fallback(problem, options, g_idx, math.nan, [*notes, result.message], info, timed_out, lag)
    if g_ok and relative_gap(g_obj, bound) <= options.mip_gap:
        notes.append(f"within mip_gap of the pool bound: MIP skipped, certified gap {relative_gap(g_obj, bound):.3g}")
        info.update(mip_columns=0)
        return RawResult(Status.OPTIMAL, g_idx, bound, "; ".join(notes), info)
    d = result.reduced

    # a MIP on the LP's support and its nearest neighbours: a quick incumbent that makes the
    # reduced-cost fixing below bite (without one, the core MIP starts cold on the whole core)
    if result.x_core is not None and not options.expired():
        t = time.perf_counter()
        s_idx, s_obj, s_cols = _support_mip(problem, pricer, result, options, g_idx if g_ok else None)
        timings["support_mip"] = time.perf_counter() - t
        notes.append(f"support MIP on {s_cols} columns: {s_obj:.10g} in {timings['support_mip']:.2f}s")
        progress(dict(event="support mip", columns=s_cols, objective=s_obj, bound=bound,
                      gap=relative_gap(s_obj, bound), seconds=timings["support_mip"]))
        if s_idx is not None and s_obj > g_obj:
            g_idx, g_obj, g_ok = s_idx, s_obj, True
        if g_ok and relative_gap(g_obj, bound) <= options.mip_gap:
            notes.append(f"within mip_gap of the pool bound: core MIP skipped, certified gap "
                         f"{relative_gap(g_obj, bound):.3g}")
            info.update(mip_columns=s_cols)
            return RawResult(Status.OPTIMAL, g_idx, bound, "; ".join(notes), info)

    # MIP on the core, reduced-cost fixed against the best incumbent
    incumbent = g_obj
    cols = result.core
    if math.isfinite(incumbent):
        keep = d[cols] >= -(bound - incumbent) - 1e-9
        cols = np.union1d(cols[keep], g_idx)
    best = None
    for attempt in range(2):
        t = time.perf_counter()
        remaining = options.remaining()
        if remaining is not None and remaining <= 0.5:
            notes.append("no time left for the core MIP")
            break
        raw = _core_mip(problem, pricer, cols, options, remaining, g_idx if g_ok else None)
        timings[f"mip_{attempt}"] = time.perf_counter() - t
        notes.append(f"core MIP {attempt}: {cols.size} columns, {raw.status}, {timings[f'mip_{attempt}']:.2f}s")
        objective = problem.objective(raw.indices) if raw.indices is not None else -math.inf
        progress(dict(event="mip", attempt=attempt, columns=int(cols.size), status=str(raw.status),
                      objective=objective, seconds=timings[f"mip_{attempt}"]))
        if raw.indices is not None:
            # Any selection using a column j outside the MIP is worth ≤ L + d_j (Lagrangian bound
            # with x_j = 1), so max(core MIP bound, L + max outside d) bounds the whole pool.
            outside = np.ones(problem.n, dtype=bool)
            outside[cols] = False
            reach = bound + min(0.0, float(d[outside].max())) if outside.any() else -math.inf
            mip_bound = raw.bound if math.isfinite(raw.bound) else bound
            raw.bound = min(bound, max(mip_bound, reach))
            if best is None or objective > best[1] or (objective == best[1] and raw.bound < best[0].bound):
                best = (raw, objective)
        if raw.status == Status.INFEASIBLE:
            if cols.size == problem.n:  # the whole pool: integer infeasible although the LP is not
                return RawResult(Status.INFEASIBLE, None, math.nan, "; ".join(notes), info)
            cols = np.arange(problem.n)  # a core can miss the only integral completions
            notes.append("core MIP infeasible: retrying on the whole pool")
            continue
        if best is None:
            break
        gap = relative_gap(best[1], best[0].bound)
        if gap <= options.mip_gap:
            break
        # columns that could still lift the objective to the bound
        wider = np.flatnonzero(d >= -(bound - best[1]) - 1e-9)
        wider = np.union1d(wider, cols)
        if wider.size == cols.size:
            break
        if wider.size > max(WIDEN_MAX_FACTOR * cols.size, WIDEN_MIN):  # duals of a cut-short pricing
            notes.append(f"gap {gap:.3g}: widening would take {wider.size} columns; kept the certified gap")
            break
        notes.append(f"gap {gap:.3g} > {options.mip_gap:g}: widening the core to {wider.size} columns")
        cols = wider
    if best is None:
        return _fallback(problem, options, g_idx if g_ok else None, bound, notes, info)
    raw, objective = best
    if g_ok and g_obj > objective:  # the MIP stopped early below the greedy incumbent
        raw.indices, objective = g_idx, g_obj
    gap = relative_gap(objective, raw.bound)
    notes.append(f"pool bound {raw.bound:.10g}, certified gap {gap:.3g}")
    info["mip_columns"] = int(cols.size)
    status = Status.OPTIMAL if gap <= options.mip_gap else (
        Status.TIME_LIMIT if options.expired() else Status.FEASIBLE)
    return RawResult(status, raw.indices, raw.bound, "; ".join(notes), {**raw.info, **info})


def _support_mip(problem, pricer, result, options: AutoOptions, start_idx):
    """MIP on the columns the core LP uses (x > 0) plus the best-priced unused quarter as many
    (+1000); returns (indices or None, objective, columns). Time: ``SUPPORT_SHARE`` of what is left
    (``SUPPORT_MAX_S`` without a limit): it only looks for an incumbent."""
    core, x, d = result.core, result.x_core, result.reduced
    used = x > 1e-6
    spare = np.flatnonzero(~used)
    extra = int(0.25 * used.sum()) + 1000
    if spare.size > extra:
        spare = spare[np.argpartition(-d[core[spare]], extra - 1)[:extra]]
    cols = np.sort(np.concatenate([core[used], core[spare]]))
    if start_idx is not None:
        cols = np.union1d(cols, start_idx)
    remaining = options.remaining()
    limit = SUPPORT_MAX_S if remaining is None else SUPPORT_SHARE * remaining
    raw = _core_mip(problem, pricer, cols, options, limit, start_idx)
    if raw.indices is None or problem.check(raw.indices):
        return None, -math.inf, int(cols.size)
    return raw.indices, problem.objective(raw.indices), int(cols.size)


def _core_mip(problem, pricer, cols, options: AutoOptions, time_limit, start_idx) -> RawResult:
    """HiGHS MIP restricted to ``cols`` (rows without a member dropped), warm-started."""
    from gdo_opt.solvers import highs as hs

    form = pricer.form
    sub = pricer.csc[:, cols].tocsr()
    rows = np.flatnonzero(np.diff(sub.indptr) > 0)
    model = hs.build_model(form.c[cols], sub[rows], form.row_lo[rows], form.row_hi[rows], integral=True,
                           verbose=options.verbose)
    hs.apply_options(model, time_limit, options.mip_gap, options.seed, options.threads, options.highs_options)
    if start_idx is not None:
        pos = np.searchsorted(cols, start_idx)
        ok = (pos < cols.size) & (cols[np.minimum(pos, cols.size - 1)] == start_idx)
        if ok.all():
            values = np.zeros(cols.size)
            values[pos] = 1.0
            model.setSolution(int(cols.size), np.arange(cols.size, dtype=np.int32), values)
    hs.watch_incumbents(model, options, columns=int(cols.size))
    hs.run_guarded(model, time_limit)
    return hs.result_from_highs(model, columns=cols)


def _quick_incumbent(problem, form, deadline):
    """(feasible indices or None, the fitted Lagrangian, the fill's indices): the greedy's priced
    fill and its escalated refills, no MIP (hard 1M: ~1.5 s, 4.5M: ~4 s)."""
    from gdo_opt.solvers.greedy import backend as gb

    lag = gb.Lagrangian(problem, form)
    order, d = gb.priced_order(problem, lag, deadline=deadline)
    if time.perf_counter() >= deadline:  # before the fill's setup (2 s at 4.5M candidates)
        return None, lag, np.zeros(0, dtype=np.int64)
    idx, left, _ = gb.run_greedy(problem, form, order, deadline, priority=d, lag=lag, defer_mip=True,
                                 refine=gb.REFINE if gb.no_lp_ahead(form, deadline) else 0)
    return (None if left else idx), lag, idx


def _fallback(problem, options, g_idx, bound, notes, info, timed_out: bool = False, lag=None) -> RawResult:
    """The greedy answer with whatever bound is known, when the exact path fails. Without an LP
    bound, the quick greedy's Lagrangian (``lag``) gives one: valid for any multipliers."""
    stopped = Status.TIME_LIMIT if (timed_out or options.expired()) else None
    if g_idx is None:
        return RawResult(stopped or Status.ERROR, None, bound, "; ".join([*notes, "no feasible selection found"]),
                         info)
    if math.isnan(bound) and lag is not None:
        bound = lag.evaluate()[0]
        notes = [*notes, f"Lagrangian bound {bound:.10g} at the quick greedy's prices"]
    gap = relative_gap(problem.objective(g_idx), bound)
    info = dict(info, fallback="greedy")
    return RawResult(stopped or Status.FEASIBLE, g_idx, bound,
                     "; ".join([*notes, f"fell back to greedy (certified gap {gap:.3g})"]), info)
